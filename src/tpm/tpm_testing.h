// Test helpers shared by the TPM unit tests (tpm*_test.cc); not part of the
// library.
#ifndef HPCS_TPM_TPM_TESTING_H_
#define HPCS_TPM_TPM_TESTING_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "base/secret.h"
#include "testing/source_tree.h"

namespace hpcs::testing {

inline std::string Str(const Secret& s) { return std::string(s.view()); }

// Sets (or with nullopt unsets) an environment variable for the scope,
// restoring the old value.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = getenv(name)) old_ = old;
    if (value) {
      setenv(name, value->c_str(), 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// A loopback port nothing listens on (bound, then released).
inline int UnusedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  close(fd);
  return ntohs(a.sin_port);
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline void WriteFile(const std::string& path, std::string_view data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
}

inline bool HaveCommand(const char* name) {
  std::string cmd = std::string("command -v ") + name + " >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

// Runs a shell command; its exit status, or -1.
inline int RunShell(const std::string& cmd) {
  int st = std::system(cmd.c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// A temporary directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/hpcs-tpm-test.XXXXXX";
    if (mkdtemp(tmpl)) path_ = tmpl;
  }
  ~TempDir() {
    if (!path_.empty()) RunShell("rm -rf '" + path_ + "'");
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A TPM of one test case's own: tests/tpm/tpm-env starts it in a fresh
// directory on free ports (TPM 1.2: swtpm and tcsd over a copy of an owned
// state that tpm-env makes once, `start --cached`, ~0.5 s instead of ~3.5 s;
// TPM 2.0: swtpm --tpm2, ~0.2 s), and stops it, removing the directory, when
// this goes. While it lives, this process's environment points at it:
// TSS_TCSD_HOSTNAME and TSS_TCSD_PORT (libtspi, tpm-tools) or HPCS_TPM2_TCTI
// and TPM2TOOLS_TCTI (our TCTI, tpm2-tools). No other case sees it, so no case
// depends on another's PCRs, passwords or seeds, and ctest may run them in any
// order and in parallel.
class OwnTpm {
 public:
  enum class Kind { kTpm12, kTpm20 };

  OwnTpm() = default;
  ~OwnTpm() { Stop(); }
  OwnTpm(const OwnTpm&) = delete;
  OwnTpm& operator=(const OwnTpm&) = delete;

  // What this machine lacks to start the kind ("needs root", a missing
  // program), for the skip reason; "" when nothing.
  static std::string Missing(Kind kind) {
    std::vector<const char*> tools = {"swtpm", "ss"};
    if (kind == Kind::kTpm12) {
      if (geteuid() != 0) return "needs root (tcsd wants its config owned by root:tss)";
      tools = {"swtpm", "swtpm_setup", "tcsd", "tpm_takeownership", "ss"};
    }
    for (const char* t : tools) {
      if (!HaveCommand(t)) return std::string("needs ") + t + " (tests/tpm/tpm-env)";
    }
    return "";
  }

  // 0 once it listens; otherwise -1 and what tpm-env said in *err.
  int Start(Kind kind, std::string* err) {
    if (root_.path().empty()) {
      *err = "cannot make a temporary directory";
      return -1;
    }
    // tcsd drops to the tss user and must reach its state below dir_.
    RunShell("chmod 0711 '" + root_.path() + "'");
    dir_ = root_.path() + "/tpm";
    const std::string log = root_.path() + "/start.log";
    const std::string how = kind == Kind::kTpm20 ? "start --tpm2" : "start --cached";
    if (RunShell("'" + SourcePath("tests/tpm/tpm-env") + "' " + how + " '" + dir_ + "' >'" + log +
                 "' 2>&1") != 0) {
      *err = "tests/tpm/tpm-env " + how + " failed:\n" + ReadFile(log);
      return -1;
    }
    // The file holds `export NAME=VALUE` lines.
    std::map<std::string, std::string> vars;
    std::istringstream env(ReadFile(dir_ + "/env"));
    for (std::string line; std::getline(env, line);) {
      constexpr std::string_view kExport = "export ";
      size_t eq = line.find('=');
      if (!line.starts_with(kExport) || eq == std::string::npos) continue;
      vars[line.substr(kExport.size(), eq - kExport.size())] = line.substr(eq + 1);
    }
    static constexpr const char* kTpm12Vars[] = {"TSS_TCSD_HOSTNAME", "TSS_TCSD_PORT"};
    static constexpr const char* kTpm20Vars[] = {"HPCS_TPM2_TCTI", "TPM2TOOLS_TCTI"};
    for (const char* name : kind == Kind::kTpm12 ? std::span(kTpm12Vars) : std::span(kTpm20Vars)) {
      auto it = vars.find(name);
      if (it == vars.end() || it->second.empty()) {
        *err = dir_ + "/env sets no " + name;
        return -1;
      }
      env_.push_back(std::make_unique<ScopedEnv>(name, it->second));
    }
    return 0;
  }

  // The tpm-env directory (for tpm-env extend, restart, stop-tcsd).
  const std::string& dir() const { return dir_; }

 private:
  void Stop() {
    env_.clear();  // the environment as it was
    if (!dir_.empty() && access((dir_ + "/ports").c_str(), F_OK) == 0) {
      RunShell("'" + SourcePath("tests/tpm/tpm-env") + "' stop '" + dir_ + "' >/dev/null 2>&1");
    }
  }

  TempDir root_;  // removed last
  std::string dir_;
  std::vector<std::unique_ptr<ScopedEnv>> env_;
};

}  // namespace hpcs::testing

#endif  // HPCS_TPM_TPM_TESTING_H_
