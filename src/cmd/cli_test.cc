#include "cmd/cli.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace hpcs {
namespace {

constexpr Flag kAll{"--all"};
constexpr TextList kTag{"--tag"};

std::string NeedsUuid(const Args& a) { return a.Get(kUuid).empty() ? "--uuid is required" : ""; }

// A table of two verbs, for the parser alone.
const Verb kTestVerbs[] = {
    {.name = "show",
     .synopsis = "show --uuid UUID [--all]",
     .needs = Needs::kNothing,
     .run = nullptr,
     .options = {&kUuid, &kAll},
     .check = NeedsUuid},
    {.name = "tag",
     .synopsis = "tag [--tag T]...",
     .needs = Needs::kNothing,
     .run = nullptr,
     .options = {&kTag}},
    {.name = "pair one",
     .synopsis = "pair one [--all]",
     .needs = Needs::kNothing,
     .run = nullptr,
     .options = {&kAll}},
    {.name = "pair two", .synopsis = "pair two", .needs = Needs::kNothing, .run = nullptr},
};

CommandLine Parse(std::vector<std::string> args, std::span<const Verb> verbs = kTestVerbs) {
  args.insert(args.begin(), "hpcs-for-luks");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return ParseCommandLine(argv, verbs);
}

// The usage error of `args`; "" when they parse.
std::string Error(std::vector<std::string> args, std::span<const Verb> verbs = kTestVerbs) {
  CommandLine c = Parse(std::move(args), verbs);
  if (c.action == CommandLine::Action::kRun) return "";
  if (c.action == CommandLine::Action::kUsageError) return c.error;
  return "<help or version>";
}

TEST(ParseCommandLineTest, AVerbWithItsOptionsAndTheGlobalOnesOnEitherSide) {
  CommandLine c =
      Parse({"--config", "/c.ini", "show", "--uuid=u1", "--timeout", "30", "--all", "--debug"});
  ASSERT_EQ(c.action, CommandLine::Action::kRun) << c.error;
  EXPECT_EQ(c.verb, &kTestVerbs[0]);
  EXPECT_EQ(c.args.Get(kUuid), "u1");
  EXPECT_TRUE(c.args.Get(kAll));
  EXPECT_EQ(c.args.Get(kConfigOption), "/c.ini");
  EXPECT_EQ(c.args.Get(kTimeoutOption), 30);
  EXPECT_TRUE(c.args.Get(kDebugOption));
  CommandLine d = Parse({"tag"});
  ASSERT_EQ(d.action, CommandLine::Action::kRun);
  EXPECT_EQ(d.args.Get(kConfigOption), kDefaultConfigPath);
  EXPECT_EQ(d.args.Get(kTimeoutOption), 120);
  EXPECT_FALSE(d.args.Get(kDebugOption));
}

TEST(ParseCommandLineTest, UnknownOptionsAndCommands) {
  EXPECT_EQ(Error({"--uuid", "x", "show"}), "unknown option '--uuid'");
  EXPECT_EQ(Error({"--bogus=1", "show"}), "unknown option '--bogus'");
  EXPECT_EQ(Error({"frobnicate"}), "unknown command 'frobnicate'");
  EXPECT_EQ(Error({}), "no command given");
  EXPECT_EQ(Error({"--debug"}), "no command given");
  EXPECT_EQ(Error({"show", "--uuid", "u", "--tag", "t"}),
            "show: unexpected argument '--tag'; usage: show --uuid UUID [--all]");
  EXPECT_EQ(Error({"show", "--uuid", "u", "extra"}),
            "show: unexpected argument 'extra'; usage: show --uuid UUID [--all]");
  // A verb's flag takes no value.
  EXPECT_EQ(Error({"show", "--uuid", "u", "--all=yes"}),
            "show: unexpected argument '--all'; usage: show --uuid UUID [--all]");
  // Another verb's name is not a second verb.
  EXPECT_EQ(Error({"tag", "show"}), "tag: unexpected argument 'show'; usage: tag [--tag T]...");
}

TEST(ParseCommandLineTest, ATwoWordVerbIsItsFirstWordAndTheNext) {
  CommandLine c = Parse({"--debug", "pair", "one", "--all"});
  ASSERT_EQ(c.action, CommandLine::Action::kRun) << c.error;
  EXPECT_EQ(c.verb, &kTestVerbs[2]);
  EXPECT_TRUE(c.args.Get(kAll));
  EXPECT_EQ(Parse({"pair", "two"}).verb, &kTestVerbs[3]);
  EXPECT_EQ(Error({"pair"}), "pair: give one|two");
  EXPECT_EQ(Error({"pair", "three"}), "pair: give one|two");
  EXPECT_EQ(Error({"pair", "--all"}), "pair: give one|two");
  EXPECT_EQ(Error({"pair", "two", "--all"}),
            "pair two: unexpected argument '--all'; usage: pair two");
  EXPECT_EQ(Error({"pai"}), "unknown command 'pai'");
}

TEST(ParseCommandLineTest, MissingAndBadValues) {
  EXPECT_EQ(Error({"show", "--uuid"}), "show: --uuid needs a value");
  EXPECT_EQ(Error({"show", "--uuid", "u", "--config"}), "--config needs a file name");
  EXPECT_EQ(Error({"--config=", "show"}), "--config needs a file name");
  EXPECT_EQ(Error({"--timeout", "0", "show"}),
            "--timeout needs a number of seconds from 1 to 86400");
  EXPECT_EQ(Error({"show", "--uuid", "u", "--timeout=1e3"}),
            "--timeout needs a number of seconds from 1 to 86400");
  // The first problem counts, before the verb's check.
  EXPECT_EQ(Error({"show", "--bogus", "--timeout", "0"}),
            "show: unexpected argument '--bogus'; usage: show --uuid UUID [--all]");
}

TEST(ParseCommandLineTest, TheVerbsCheckRunsLastWithItsName) {
  EXPECT_EQ(Error({"show"}), "show: --uuid is required");
  EXPECT_EQ(Error({"show", "--uuid="}), "show: --uuid is required");
  EXPECT_EQ(Error({"show", "--uuid", "a", "--uuid="}), "show: --uuid is required");  // the last
  EXPECT_EQ(Error({"show", "--uuid=", "--uuid", "a"}), "");
}

TEST(ParseCommandLineTest, RepeatedOptions) {
  CommandLine c = Parse({"tag", "--tag", "a", "--tag=b", "--config", "/1", "--config", "/2"});
  ASSERT_EQ(c.action, CommandLine::Action::kRun) << c.error;
  EXPECT_EQ(c.args.Get(kTag), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(c.args.Get(kConfigOption), "/2");
}

TEST(ParseCommandLineTest, HelpAndVersionEndTheParsingUnlessAnErrorCameFirst) {
  EXPECT_EQ(Parse({"--help", "frobnicate"}).action, CommandLine::Action::kHelp);
  EXPECT_EQ(Parse({"show", "-h"}).action, CommandLine::Action::kHelp);  // before the check
  EXPECT_EQ(Parse({"--help=x"}).action, CommandLine::Action::kHelp);
  EXPECT_EQ(Parse({"--version", "--help"}).action, CommandLine::Action::kVersion);
  EXPECT_EQ(Parse({"tag", "--version", "--bogus"}).action, CommandLine::Action::kVersion);
  EXPECT_EQ(Error({"frobnicate", "--help"}), "unknown command 'frobnicate'");
  EXPECT_EQ(Error({"show", "--bogus", "--help"}),
            "show: unexpected argument '--bogus'; usage: show --uuid UUID [--all]");
}

// ---- The real verb table ----

// The "--option" words of a synopsis.
std::set<std::string> SynopsisOptions(const std::string& synopsis) {
  std::set<std::string> names;
  std::regex option("--[a-z0-9][a-z0-9-]*");
  for (auto it = std::sregex_iterator(synopsis.begin(), synopsis.end(), option);
       it != std::sregex_iterator(); ++it) {
    names.insert(it->str());
  }
  return names;
}

TEST(VerbTableTest, EachSynopsisNamesExactlyTheVerbsOptions) {
  for (const Verb& v : Verbs()) {
    std::set<std::string> declared;
    for (const Option* o : v.options) declared.insert(std::string(o->name));
    EXPECT_EQ(declared.size(), v.options.size()) << v.name << ": an option declared twice";
    EXPECT_EQ(SynopsisOptions(v.synopsis), declared) << v.name;
  }
}

TEST(VerbTableTest, NamesAreUniqueAndNoVerbOptionIsShadowedByAGlobalOne) {
  std::set<std::string> names;
  for (const Verb& v : Verbs()) {
    EXPECT_TRUE(names.insert(v.name).second) << v.name;
    for (const Option* o : v.options) {
      for (const Option* g : std::initializer_list<const Option*>{
               &kConfigOption, &kTimeoutOption, &kDebugOption, &kVersionOption, &kHelpOption}) {
        EXPECT_NE(o->name, g->name) << v.name;
      }
    }
  }
}

TEST(VerbTableTest, AVerbThatNeedsTheRootKeyTakesUuid) {
  for (const Verb& v : Verbs()) {
    if (v.needs != Needs::kKmsAndRootKey) continue;
    EXPECT_NE(std::find(v.options.begin(), v.options.end(), &kUuid), v.options.end()) << v.name;
  }
}

TEST(VerbTableTest, TheVerbsUsageErrors) {
  auto verbs = Verbs();
  EXPECT_EQ(Error({"get"}, verbs), "get: --uuid UUID is required");
  EXPECT_EQ(Error({"get", "--uuid"}, verbs), "get: --uuid needs a value");
  EXPECT_EQ(Error({"create", "--crk", "--std", "--name", "ab"}, verbs),
            "create: give exactly one of --crk or --std");
  EXPECT_EQ(Error({"create", "--crk", "--name", "a"}, verbs),
            "create: --name NAME (2 to 90 characters) is required");
  EXPECT_EQ(Error({"create", "--crk", "--name", "ab", "--gen"}, verbs), "");
  EXPECT_EQ(Error({"rewrap", "--to-config", "x.ini"}, verbs), "rewrap: --to-config needs --to-crk");
  EXPECT_EQ(Error({"rewrap", "--uuid", "a", "--to-crk", "a"}, verbs),
            "rewrap: --to-crk names the root key the keys are wrapped with now");
  EXPECT_EQ(Error({"seal-api-key", "--tpm1", "--tpm2"}, verbs),
            "seal-api-key: --tpm1 or --tpm2, not both");
  EXPECT_EQ(Error({"config"}, verbs), "config: give --get NAME (repeatable) or --print");
  EXPECT_EQ(Error({"config", "--get", "api_key"}, verbs),
            "config: api_key is a secret and is not printed; ask for api_key_source");
  EXPECT_EQ(Error({"config", "--get", "region", "--ca-file", "f"}, verbs),
            "config: --ca-file goes with --print");
  EXPECT_EQ(Error({"config", "--get", "region", "--with-api-key"}, verbs),
            "config: --with-api-key goes with --print");
  EXPECT_EQ(Error({"config", "--get", "region", "--ca-file="}, verbs), "");
  EXPECT_EQ(Error({"config", "--print", "--with-api-key", "--ca-file", "f"}, verbs), "");
}

}  // namespace
}  // namespace hpcs
