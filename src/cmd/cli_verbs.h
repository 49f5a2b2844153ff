// The verbs of the admin CLI `hpcs-for-luks`: one table, each entry saying
// what the verb needs (the config; a KMS client; and the root key) so that
// CliMain (cli.cc) provides it once, ninja's Tool table. Internal to the CLI.
// A new verb is its options (constexpr Flag, Text, ... in cli_verbs.cc), one
// entry in the table and its Cmd function; its synopsis names exactly its
// options (cli_test.cc checks) and the completion offers them (cli.bats).
#ifndef HPCS_CMD_CLI_VERBS_H_
#define HPCS_CMD_CLI_VERBS_H_

#include <span>
#include <string>

#include "cmd/cli_options.h"
#include "core/config.h"
#include "core/key_dir_lock.h"
#include "core/kms.h"

namespace hpcs {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFail = 1;
inline constexpr int kExitUsage = 2;

// Parsed command line: the options before the verb and the verb's, typed.
using Args = OptionValues;

// The options before or after the verb that every verb takes.
inline constexpr FileName kConfigOption{"--config", "FILE", "configuration", kDefaultConfigPath};
inline constexpr Seconds kTimeoutOption{"--timeout", "SECONDS",
                                        "give up on the KMS after this long", 120};
inline constexpr Flag kDebugOption{"--debug", "more messages"};
inline constexpr Flag kVersionOption{"--version", "print the version"};
inline constexpr Flag kHelpOption{"--help", "this help", "-h"};
// The root key (Needs::kKmsAndRootKey), or the key a verb is about.
inline constexpr Text kUuid{"--uuid"};

// What a verb needs before it runs; CliMain provides it (ninja's Tool table).
enum class Needs {
  kNothing,        // the verb loads what it needs (report: an unreadable config is exit 2)
  kConfig,         // the configuration, loaded and checked for exposure
  kKms,            // and a KMS client (settings checked, API key obtained)
  kKmsAndRootKey,  // and the root key: --uuid, else default_crk_uuid
};

// Everything a verb gets.
struct Context {
  const Args& args;
  Config config;
  std::string crk;
  Kms kms;
  KeyDirLock key_dir_lock;  // held for a verb that writes_key_dir
};

struct Verb {
  const char* name;
  const char* synopsis;
  Needs needs;
  int (*run)(Context&);
  OptionList options = {};  // besides the global ones
  // Problems with the arguments alone, found before anything is loaded.
  std::string (*check)(const Args&) = nullptr;
  // Holds the key directory's lock (key_dir_lock.h) for its whole run.
  bool writes_key_dir = false;
};

std::span<const Verb> Verbs();

// Prints a usage error; returns its exit code.
int Usage(const std::string& msg);
// Logs the failure of a command; returns its exit code.
int CommandFailed(const std::string& msg);

}  // namespace hpcs

#endif  // HPCS_CMD_CLI_VERBS_H_
