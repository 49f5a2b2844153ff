// The verbs of the admin CLI `hpcs-for-luks`: one table, each entry saying
// what the verb needs (the config; a KMS client; and the root key) so that
// CliMain (cli.cc) provides it once, ninja's Tool table. Internal to the CLI.
#ifndef HPCS_CMD_CLI_VERBS_H_
#define HPCS_CMD_CLI_VERBS_H_

#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/kms.h"

namespace hpcs {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFail = 1;
inline constexpr int kExitUsage = 2;

// Parsed command line: flags and valued options of one verb, plus globals.
struct Args {
  std::string config = kDefaultConfigPath;
  std::map<std::string, std::vector<std::string>> values;
  std::set<std::string> flags;
  long timeout_s = 120;
  bool debug = false;

  bool Has(const std::string& f) const { return flags.count(f) > 0; }
  std::string Value(const std::string& o) const {
    auto it = values.find(o);
    return it == values.end() || it->second.empty() ? "" : it->second.back();
  }
};

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
};

struct Verb {
  const char* name;
  const char* synopsis;
  Needs needs;
  int (*run)(Context&);
  std::vector<std::string> value_options = {};  // "--uuid" ...
  std::vector<std::string> flag_options = {};   // "--gen" ...
  // Problems with the arguments alone, found before anything is loaded.
  std::string (*check)(const Args&) = nullptr;
};

std::span<const Verb> Verbs();

// Prints a usage error; returns its exit code.
int Usage(const std::string& msg);
// Logs the failure of a command; returns its exit code.
int CommandFailed(const std::string& msg);

}  // namespace hpcs

#endif  // HPCS_CMD_CLI_VERBS_H_
