#include "cmd/cli.h"

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>

#include "base/json.h"
#include "base/log.h"
#include "base/strutil.h"
#include "base/version.h"
#include "cmd/cli_verbs.h"
#include "cmd/command.h"
#include "core/config.h"
#include "core/kms.h"

namespace hpcs {
namespace {

// ---- Providing what the verbs need ----

// --uuid, else default_crk_uuid, else an error.
bool ResolveCrk(const Args& a, const Config& c, std::string* crk) {
  *crk = a.Get(kUuid);
  if (crk->empty()) *crk = c.default_crk_uuid;
  if (crk->empty()) {
    LogError("No root key given: pass --uuid UUID or set default_crk_uuid in [KP] of '" + c.path +
             "'");
    return false;
  }
  return true;
}

int Dispatch(const Verb& verb, const Args& a) {
  Context ctx{a, {}, {}, {}, {}};
  if (verb.needs == Needs::kNothing) return verb.run(ctx);
  if (!LoadConfigAndWarn(a.Get(kConfigOption), &ctx.config)) return kExitFail;
  if (verb.needs == Needs::kKmsAndRootKey && !ResolveCrk(a, ctx.config, &ctx.crk)) {
    return kExitFail;
  }
  if (verb.writes_key_dir && !LockKeyDirOrLog(ctx.config, &ctx.key_dir_lock)) return kExitFail;
  if (verb.needs != Needs::kConfig) {
    KmsOptions o;
    o.deadline = Clock::now() + std::chrono::seconds(a.Get(kTimeoutOption));
    std::string err;
    if (OpenKms(ctx.config, o, &ctx.kms, &err) < 0) return CommandFailed(err);
  }
  return verb.run(ctx);
}

const OptionList kGlobalOptions = {&kConfigOption, &kTimeoutOption, &kDebugOption, &kVersionOption,
                                   &kHelpOption};

void PrintHelp() {
  std::string h =
      "Usage: hpcs-for-luks [--config FILE] [--timeout SECONDS] [--debug] COMMAND [OPTIONS]\n"
      "\n"
      "Keys for dm-crypt and LUKS, wrapped by a root key in IBM Key Protect or HPCS.\n"
      "\n"
      "Commands:\n";
  for (const auto& v : Verbs()) h += "  " + std::string(v.synopsis) + "\n";
  h += "\nOptions:\n" + OptionHelp(kGlobalOptions);
  fputs(h.c_str(), stdout);
}

// ---- The command line ----

CommandLine Stop(CommandLine::Action action, std::string error = "") {
  CommandLine c;
  c.action = action;
  c.error = std::move(error);
  return c;
}

CommandLine UsageError(std::string error) {
  return Stop(CommandLine::Action::kUsageError, std::move(error));
}

// nullopt when `a` goes on; else --help or --version, which end the parsing.
std::optional<CommandLine> HelpOrVersion(const Args& a) {
  if (a.Get(kHelpOption)) return Stop(CommandLine::Action::kHelp);
  if (a.Get(kVersionOption)) return Stop(CommandLine::Action::kVersion);
  return std::nullopt;
}

// The verb named `arg`; nullptr when there is none.
const Verb* FindVerb(std::span<const Verb> verbs, const std::string& arg) {
  for (const auto& v : verbs) {
    if (arg == v.name) return &v;
  }
  return nullptr;
}

// The sub-verbs of a two-word verb ("token make", "token open") whose first
// word is `arg`, as "make|open"; "" when `arg` is no such word.
std::string SubVerbs(std::span<const Verb> verbs, const std::string& arg) {
  std::string subs;
  for (const auto& v : verbs) {
    std::string_view name = v.name;
    if (name.size() > arg.size() + 1 && StartsWith(name, arg) && name[arg.size()] == ' ') {
      subs += (subs.empty() ? "" : "|") + std::string(name.substr(arg.size() + 1));
    }
  }
  return subs;
}

}  // namespace

CommandLine ParseCommandLine(std::span<char* const> argv, std::span<const Verb> verbs) {
  CommandLine c;
  ArgReader r(argv);
  while (r.Next()) {
    if (auto m = ReadOption(r, kGlobalOptions, InlineFlagValue::kIgnored, "", &c.args)) {
      if (!m->empty()) return UsageError(*m);
      if (auto stop = HelpOrVersion(c.args)) return *stop;
      continue;
    }
    if (!c.verb) {
      if (StartsWith(r.arg(), "-")) return UsageError("unknown option '" + r.arg() + "'");
      c.verb = FindVerb(verbs, r.arg());
      if (std::string subs = SubVerbs(verbs, r.arg()); !c.verb && !subs.empty()) {
        std::string word = r.arg();
        if (!r.Next() || !(c.verb = FindVerb(verbs, word + " " + r.arg()))) {
          return UsageError(word + ": give " + subs);
        }
      }
      if (!c.verb) return UsageError("unknown command '" + r.arg() + "'");
      continue;
    }
    std::string prefix = std::string(c.verb->name) + ": ";
    auto m = ReadOption(r, c.verb->options, InlineFlagValue::kRefused, prefix, &c.args);
    if (!m) {
      return UsageError(prefix + "unexpected argument '" + r.arg() +
                        "'; usage: " + c.verb->synopsis);
    }
    if (!m->empty()) return UsageError(*m);
  }
  if (!c.verb) return UsageError("no command given");
  if (c.verb->check) {
    if (std::string m = c.verb->check(c.args); !m.empty()) {
      return UsageError(c.verb->name + (": " + m));
    }
  }
  return c;
}

int CliMain(int argc, char** argv) {
  DisableCoreDumps();
  LogSetup({LogLevel::kInfo, false, "hpcs-for-luks"});
  CommandLine c = ParseCommandLine({argv, static_cast<size_t>(argc)}, Verbs());
  switch (c.action) {
    case CommandLine::Action::kHelp:
      PrintHelp();
      return kExitOk;
    case CommandLine::Action::kVersion:
      printf("hpcs-for-luks %s\n", kHpcsVersion);
      return kExitOk;
    case CommandLine::Action::kUsageError:
      return Usage(c.error);
    case CommandLine::Action::kRun:
      break;
  }
  if (c.args.Get(kDebugOption)) LogSetup({LogLevel::kDebug, false, "hpcs-for-luks"});
  std::string err;
  if (HttpGlobalInit(&err) < 0) return CommandFailed(err);
  JsonInit();
  return Dispatch(*c.verb, c.args);
}

}  // namespace hpcs
