#include "base/strutil.h"

#include <gtest/gtest.h>

namespace hpcs {
namespace {

TEST(EscapeControlsTest, ANewlineCannotStartALineOfItsOwn) {
  EXPECT_EQ(EscapeControls("key 'x\n<2>hpcs-unlock: forged'"),
            "key 'x\\x0a<2>hpcs-unlock: forged'");
  EXPECT_EQ(EscapeControls("a\rb\tc"), "a\\x0db\\x09c");
}

TEST(EscapeControlsTest, TerminalEscapesAreDefused) {
  EXPECT_EQ(EscapeControls("\x1b[2J"), "\\x1b[2J");
  EXPECT_EQ(EscapeControls(std::string_view("\0\x7f", 2)), "\\x00\\x7f");
  // U+009B (CSI) in UTF-8.
  EXPECT_EQ(EscapeControls("a\xc2\x9b"
                           "2J"),
            "a\\u009b2J");
}

TEST(EscapeControlsTest, PrintableTextAndUtf8AreKept) {
  EXPECT_EQ(EscapeControls("luks:root 'Grüße' \xc2\xa0"), "luks:root 'Grüße' \xc2\xa0");
  EXPECT_EQ(EscapeControls("\xc2"), "\xc2");  // a truncated sequence at the end
}

}  // namespace
}  // namespace hpcs
