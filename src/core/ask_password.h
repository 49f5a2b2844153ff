// systemd's password agent protocol (systemd.io/PASSWORD_AGENTS), the part an
// agent needs: a program that wants a password (systemd-cryptsetup) writes
// /run/systemd/ask-password/ask.XXXX, an INI file with [Ask] PID=, Socket=,
// NotAfter= (CLOCK_MONOTONIC, µs; 0: none), Message=, Id=; any agent answers
// with one datagram "+PASSWORD" (or "-" to cancel) to Socket=, and the file
// goes away when the question is settled. systemd-cryptsetup's Id= is
// "cryptsetup:" and the C-escaped path of the source device.
#ifndef HPCS_CORE_ASK_PASSWORD_H_
#define HPCS_CORE_ASK_PASSWORD_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/secret.h"

namespace hpcs {

inline constexpr const char* kAskPasswordDir = "/run/systemd/ask-password";

struct AskRequest {
  std::string file;     // the ask file, as found
  std::string id;       // Id=
  std::string socket;   // Socket=: where the answer goes
  std::string message;  // Message=, for people
  pid_t pid = 0;        // PID= of the asking program
  uint64_t not_after_us = 0;
  bool echo = false;
};

// Parses an ask file's text; -EBADMSG when it has no [Ask] section, no
// Socket= or no PID=.
int ParseAskRequest(std::string_view text, AskRequest* out, std::string* err);

// The pending requests in `dir` (ask.* files), each read and parsed; a file
// that cannot be (gone in between, malformed, not root's) is left out, with a
// line in *skipped. A missing directory is no request: 0.
int ReadAskRequests(const std::string& dir, std::vector<AskRequest>* out,
                    std::vector<std::string>* skipped, std::string* err);

// The device path of a systemd-cryptsetup request (Id=cryptsetup:PATH, PATH
// unescaped); nullopt for any other asker or a path that is not absolute.
std::optional<std::string> CryptsetupDevice(const AskRequest& r);

// Whether the request still wants an answer: its asker is alive and its
// NotAfter= has not passed (now_us: CLOCK_MONOTONIC).
bool AskRequestLive(const AskRequest& r, uint64_t now_us);

// Sends "+passphrase" to the request's socket. Refused (-EINVAL) for a
// socket outside the ask file's directory or not a socket of root's, and for
// a passphrase with a NUL byte (the asker would cut it there).
int AnswerAskRequest(const AskRequest& r, const Secret& passphrase, std::string* err);

}  // namespace hpcs

#endif  // HPCS_CORE_ASK_PASSWORD_H_
