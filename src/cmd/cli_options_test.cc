#include "cmd/cli_options.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace hpcs {
namespace {

constexpr Flag kGen{"--gen"};
constexpr Flag kHelpFlag{"--help", "this help", "-h"};
constexpr Text kUuidText{"--uuid"};
constexpr TextList kPcrList{"--pcr"};
constexpr FileName kFile{"--config", "FILE", "configuration", "/etc/x.ini"};
constexpr Seconds kWait{"--timeout", "SECONDS", "give up after this long", 120};

const OptionList kAll = {&kGen, &kHelpFlag, &kUuidText, &kPcrList, &kFile, &kWait};

// A command line; argv[0] is the program.
class Argv {
 public:
  explicit Argv(std::vector<std::string> args) : args_(std::move(args)) {
    args_.insert(args_.begin(), "prog");
    for (auto& a : args_) ptrs_.push_back(a.data());
  }
  std::span<char* const> span() const { return ptrs_; }

 private:
  std::vector<std::string> args_;
  std::vector<char*> ptrs_;
};

// Reads every argument as one of kAll; the first result that is not "" (an
// error, or "?" for an argument that is none of them), else "".
std::string ReadAll(const Argv& argv, OptionValues* out,
                    InlineFlagValue inline_flag = InlineFlagValue::kRefused) {
  ArgReader r(argv.span());
  while (r.Next()) {
    auto m = ReadOption(r, kAll, inline_flag, "verb: ", out);
    if (!m) return "?" + r.arg();
    if (!m->empty()) return *m;
  }
  return "";
}

TEST(ArgReaderTest, SplitsDoubleDashNameEqualsValueOnly) {
  Argv argv({"--uuid=a=b", "-x=1", "plain=2", "--flag"});
  ArgReader r(argv.span());
  ASSERT_TRUE(r.Next());
  EXPECT_EQ(r.arg(), "--uuid");
  EXPECT_TRUE(r.has_inline());
  std::string v;
  ASSERT_TRUE(r.TakeValue(&v));
  EXPECT_EQ(v, "a=b");
  ASSERT_TRUE(r.Next());
  EXPECT_EQ(r.arg(), "-x=1");
  EXPECT_FALSE(r.has_inline());
  ASSERT_TRUE(r.Next());
  EXPECT_EQ(r.arg(), "plain=2");
  ASSERT_TRUE(r.Next());
  EXPECT_EQ(r.arg(), "--flag");
  EXPECT_FALSE(r.TakeValue(&v));  // nothing after it
  EXPECT_FALSE(r.Next());
}

TEST(ArgReaderTest, AValueIsTheNextArgumentWhateverItIs) {
  Argv argv({"--uuid", "--gen", "--pcr"});
  ArgReader r(argv.span());
  ASSERT_TRUE(r.Next());
  std::string v;
  ASSERT_TRUE(r.TakeValue(&v));
  EXPECT_EQ(v, "--gen");
  ASSERT_TRUE(r.Next());
  EXPECT_EQ(r.arg(), "--pcr");
}

TEST(ReadOptionTest, UnknownOptionIsNoneOfThem) {
  OptionValues v;
  EXPECT_EQ(ReadAll(Argv({"--uuidx", "x"}), &v), "?--uuidx");
  EXPECT_EQ(ReadAll(Argv({"-u"}), &v), "?-u");
  EXPECT_EQ(ReadAll(Argv({"gen"}), &v), "?gen");
}

TEST(ReadOptionTest, MissingValueNamesTheOptionAndWhatItNeeds) {
  OptionValues v;
  EXPECT_EQ(ReadAll(Argv({"--gen", "--uuid"}), &v), "verb: --uuid needs a value");
  EXPECT_EQ(ReadAll(Argv({"--pcr"}), &v), "verb: --pcr needs a value");
  EXPECT_EQ(ReadAll(Argv({"--config"}), &v), "verb: --config needs a file name");
  EXPECT_EQ(ReadAll(Argv({"--timeout"}), &v),
            "verb: --timeout needs a number of seconds from 1 to 86400");
}

TEST(ReadOptionTest, TypedValuesAreChecked) {
  for (const char* bad : {"0", "86401", "-1", "ten", "10s", ""}) {
    OptionValues v;
    EXPECT_EQ(ReadAll(Argv({"--timeout", bad}), &v),
              "verb: --timeout needs a number of seconds from 1 to 86400")
        << bad;
  }
  OptionValues v;
  EXPECT_EQ(ReadAll(Argv({"--config="}), &v), "verb: --config needs a file name");
  EXPECT_EQ(ReadAll(Argv({"--config", ""}), &v), "verb: --config needs a file name");
  EXPECT_FALSE(v.Given(kFile));
  // A text may be empty.
  EXPECT_EQ(ReadAll(Argv({"--uuid="}), &v), "");
  EXPECT_TRUE(v.Given(kUuidText));
  EXPECT_EQ(v.Get(kUuidText), "");
}

TEST(ReadOptionTest, TypedValuesAndDefaults) {
  OptionValues none;
  EXPECT_FALSE(none.Get(kGen));
  EXPECT_EQ(none.Get(kUuidText), "");
  EXPECT_TRUE(none.Get(kPcrList).empty());
  EXPECT_EQ(none.Get(kFile), "/etc/x.ini");
  EXPECT_EQ(none.Get(kWait), 120);
  OptionValues v;
  ASSERT_EQ(ReadAll(Argv({"--gen", "--uuid", "u1", "--config=/c.ini", "--timeout", "86400"}), &v),
            "");
  EXPECT_TRUE(v.Get(kGen));
  EXPECT_EQ(v.Get(kUuidText), "u1");
  EXPECT_EQ(v.Get(kFile), "/c.ini");
  EXPECT_EQ(v.Get(kWait), 86400);
  EXPECT_FALSE(v.Given(kPcrList));
}

TEST(ReadOptionTest, RepeatedOptions) {
  OptionValues v;
  ASSERT_EQ(ReadAll(Argv({"--uuid", "a", "--pcr", "7", "--uuid=b", "--pcr=8=ab", "--gen", "--gen",
                          "--timeout", "5", "--timeout", "9"}),
                    &v),
            "");
  EXPECT_EQ(v.Get(kUuidText), "b");                                     // the last one counts
  EXPECT_EQ(v.Get(kPcrList), (std::vector<std::string>{"7", "8=ab"}));  // all, in order
  EXPECT_TRUE(v.Get(kGen));
  EXPECT_EQ(v.Get(kWait), 9);
  // A bad one among good ones is an error all the same.
  OptionValues w;
  EXPECT_EQ(ReadAll(Argv({"--timeout", "5", "--timeout", "0"}), &w),
            "verb: --timeout needs a number of seconds from 1 to 86400");
}

TEST(ReadOptionTest, AFlagWithAValue) {
  OptionValues v;
  EXPECT_EQ(ReadAll(Argv({"--gen=yes"}), &v), "?--gen");
  EXPECT_FALSE(v.Get(kGen));
  EXPECT_EQ(ReadAll(Argv({"--gen=yes"}), &v, InlineFlagValue::kIgnored), "");
  EXPECT_TRUE(v.Get(kGen));
}

TEST(ReadOptionTest, Alias) {
  OptionValues v;
  ASSERT_EQ(ReadAll(Argv({"-h"}), &v), "");
  EXPECT_TRUE(v.Get(kHelpFlag));
  EXPECT_EQ(ReadAll(Argv({"-gen"}), &v), "?-gen");
}

TEST(OptionHelpTest, OneAlignedLinePerOptionWithItsDefault) {
  EXPECT_EQ(OptionHelp({&kFile, &kWait, &kHelpFlag}),
            "  --config FILE      configuration (default /etc/x.ini)\n"
            "  --timeout SECONDS  give up after this long (default 120)\n"
            "  -h, --help         this help\n");
}

}  // namespace
}  // namespace hpcs
