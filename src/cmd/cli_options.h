// The options of the admin CLI, declared once and typed: each is a constexpr
// object (`Text kUuid{"--uuid"}`) that the verb table lists, the parser
// matches and the verb reads back (`args.Get(kUuid)`), so that a misspelt
// option does not compile. One parser for the options before and after the
// verb; cli.cc walks the command line with it.
#ifndef HPCS_CMD_CLI_OPTIONS_H_
#define HPCS_CMD_CLI_OPTIONS_H_

#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hpcs {

enum class OptionType {
  kFlag,      // --gen
  kText,      // --uuid UUID: the last one given counts
  kTextList,  // --pcr N, repeatable: all of them count, in order
  kFileName,  // --config FILE: a text that must not be empty
  kSeconds,   // --timeout SECONDS: 1 to 86400 (ParseSeconds)
};

struct Option {
  std::string_view name;  // "--uuid"
  OptionType type;
  std::string_view value_name;  // "FILE", for --help
  std::string_view help;        // its line in --help
  std::string_view alias;       // "-h"
  std::string_view default_text;
  long default_seconds = 0;

  bool TakesValue() const { return type != OptionType::kFlag; }
};

// The typed declarations: Get() returns what the type says, and asking a flag
// for its text does not compile either.
struct Flag : Option {
  constexpr explicit Flag(std::string_view n, std::string_view h = {}, std::string_view a = {})
      : Option{n, OptionType::kFlag, {}, h, a, {}, 0} {}
};
struct Text : Option {
  constexpr explicit Text(std::string_view n) : Option{n, OptionType::kText, {}, {}, {}, {}, 0} {}
};
struct TextList : Option {
  constexpr explicit TextList(std::string_view n)
      : Option{n, OptionType::kTextList, {}, {}, {}, {}, 0} {}
};
struct FileName : Option {
  constexpr FileName(std::string_view n, std::string_view v, std::string_view h, std::string_view d)
      : Option{n, OptionType::kFileName, v, h, {}, d, 0} {}
};
struct Seconds : Option {
  constexpr Seconds(std::string_view n, std::string_view v, std::string_view h, long d)
      : Option{n, OptionType::kSeconds, v, h, {}, {}, d} {}
};

using OptionList = std::vector<const Option*>;

// What the command line gave, by option.
class OptionValues {
 public:
  bool Get(const Flag& o) const { return Given(o); }
  // The last one given; the default when none was.
  std::string Get(const Text& o) const { return Last(o, ""); }
  std::string Get(const FileName& o) const { return Last(o, o.default_text); }
  long Get(const Seconds& o) const;
  // Every one given, in order; empty when none was.
  const std::vector<std::string>& Get(const TextList& o) const;

  bool Given(const Option& o) const { return values_.count(o.name) > 0; }
  void Add(const Option& o, std::string value) { values_[o.name].push_back(std::move(value)); }

 private:
  std::string Last(const Option& o, std::string_view fallback) const;
  std::map<std::string_view, std::vector<std::string>> values_;
};

// The command line one argument at a time; "--name=value" is split.
class ArgReader {
 public:
  explicit ArgReader(std::span<char* const> argv) : argv_(argv) {}
  // Moves to the next argument; false at the end.
  bool Next();
  const std::string& arg() const { return arg_; }
  bool has_inline() const { return has_inline_; }
  // The value: after '=', else the next argument whatever it is.
  bool TakeValue(std::string* out);

 private:
  std::span<char* const> argv_;
  size_t i_ = 0;
  std::string arg_, inline_value_;
  bool has_inline_ = false;
};

// How a flag given as "--flag=VALUE" is taken: the options before the verb
// have always ignored the value, a verb's flags refuse it.
enum class InlineFlagValue { kIgnored, kRefused };

// Reads the current argument as one of `options`, and its value. nullopt when
// it is none of them; else "" when taken, or the usage error
// ("--timeout needs a number of seconds ...", prefixed with `prefix`).
std::optional<std::string> ReadOption(ArgReader& r, const OptionList& options,
                                      InlineFlagValue inline_flag, std::string_view prefix,
                                      OptionValues* out);

// The --help lines of `options`: "  --config FILE      configuration (default ...)".
std::string OptionHelp(const OptionList& options);

}  // namespace hpcs

#endif  // HPCS_CMD_CLI_OPTIONS_H_
