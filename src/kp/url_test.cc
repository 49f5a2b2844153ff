#include "kp/url.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace hpcs {
namespace {

TEST(UrlTest, HostLoweredAndPortDefaulted) {
  struct Case {
    const char* url;
    const char* host;
    int port;
  };
  for (const Case& c : {Case{"https://kms.test", "kms.test", 443},
                        Case{"HTTPS://KMS.Test:8443/api/v2?x=1", "kms.test", 8443},
                        Case{"https://kms.test:1/", "kms.test", 1},
                        Case{"https://kms.test:65535#f", "kms.test", 65535},
                        Case{"https://kms.test?q", "kms.test", 443},
                        Case{"https://[fd00::2]:9443/x", "[fd00::2]", 9443},
                        Case{"https://[FD00::2]", "[fd00::2]", 443},
                        Case{"https://10.0.2.2:8443", "10.0.2.2", 8443}}) {
    HttpsUrl u;
    std::string err;
    ASSERT_EQ(ParseHttpsUrl(c.url, &u, &err), 0) << c.url << ": " << err;
    EXPECT_EQ(u.host, c.host) << c.url;
    EXPECT_EQ(u.port, c.port) << c.url;
    EXPECT_EQ(u.Origin(), std::string(c.host) + ":" + std::to_string(c.port));
  }
}

// What follows the host and port, as written (the boot allow-list takes none).
TEST(UrlTest, PathQueryAndFragmentAsWritten) {
  struct Case {
    const char* url;
    const char* path;
    bool query, fragment;
  };
  for (const Case& c :
       {Case{"https://h", "", false, false}, Case{"https://h:1/", "/", false, false},
        Case{"https://h/a/../b", "/a/../b", false, false}, Case{"https://h?", "", true, false},
        Case{"https://h/x?a=b#c", "/x", true, true}, Case{"https://h#f?g", "", false, true},
        Case{"https://h:8443/#", "/", false, true}}) {
    HttpsUrl u;
    std::string err;
    ASSERT_EQ(ParseHttpsUrl(c.url, &u, &err), 0) << c.url << ": " << err;
    EXPECT_EQ(u.path, c.path) << c.url;
    EXPECT_EQ(u.has_query, c.query) << c.url;
    EXPECT_EQ(u.has_fragment, c.fragment) << c.url;
  }
}

// Each refusal names the URL and why; *out stays as it was.
TEST(UrlTest, RefusalsNameTheUrlAndTheReason) {
  struct Case {
    const char* url;
    const char* err;
  };
  for (const Case& c : {
           Case{"http://kms.test", "'http://kms.test' is not an https:// URL"},
           Case{"kms.test", "'kms.test' is not an https:// URL"},
           Case{" https://kms.test", "' https://kms.test' is not an https:// URL"},
           Case{"https://", "'https://' is not a URL curl can use: No host part in the URL"},
           Case{"https://:443",
                "'https://:443' is not a URL curl can use: No host part in the URL"},
           Case{"https://h:0", "'https://h:0' has a port that is not from 1 to 65535"},
           Case{"https://h:65536",
                "'https://h:65536' is not a URL curl can use: Port number was not a decimal "
                "number between 0 and 65535"},
           Case{"https://h:x",
                "'https://h:x' is not a URL curl can use: Port number was not a decimal number "
                "between 0 and 65535"},
           Case{"https://[fd00::2",
                "'https://[fd00::2' is not a URL curl can use: Bad IPv6 address"},
           Case{"https://a\\.b", "'https://a\\.b' is not a URL curl can use: Bad hostname"},
           // curl takes one or three slashes, an escaped host, an empty port:
           // written otherwise than it is read, so refused.
           Case{"https:/evil.example/x://iam.cloud.ibm.com",
                "'https:/evil.example/x://iam.cloud.ibm.com' is not written as "
                "https://HOST[:PORT][/PATH]: curl would connect to 'evil.example'"},
           Case{"https:///evil.example",
                "'https:///evil.example' is not written as https://HOST[:PORT][/PATH]: curl would "
                "connect to 'evil.example'"},
           Case{"https://evil%2eexample",
                "'https://evil%2eexample' is not written as https://HOST[:PORT][/PATH]: curl "
                "would connect to 'evil.example'"},
           Case{"https://h:",
                "'https://h:' is not written as https://HOST[:PORT][/PATH]: curl "
                "would connect to 'h'"},
           Case{"https://0x7f.1",
                "'https://0x7f.1' is not written as https://HOST[:PORT][/PATH]: "
                "curl would connect to '127.0.0.1'"},
       }) {
    HttpsUrl u;
    u.host = "untouched";
    u.port = 7;
    std::string err;
    EXPECT_EQ(ParseHttpsUrl(c.url, &u, &err), -EINVAL) << c.url;
    EXPECT_EQ(err, c.err);
    EXPECT_EQ(u.host, "untouched");
    EXPECT_EQ(u.port, 7);
  }
  HttpsUrl u;
  std::string err;
  EXPECT_EQ(ParseHttpsUrl(std::string_view("https://h\0.x", 12), &u, &err), -EINVAL);
  EXPECT_EQ(err, "'https://h\\x00.x' holds a NUL byte");
}

// A user part is refused, and the refusal does not repeat it.
// Plain http:// only where asked for (the metadata service), read the same way.
TEST(UrlTest, PlainHttpOnlyWhenAllowed) {
  HttpsUrl u;
  std::string err;
  ASSERT_EQ(ParseUrl("http://169.254.169.254", UrlSchemes::kHttpAllowed, &u, &err), 0) << err;
  EXPECT_FALSE(u.https);
  EXPECT_EQ(u.Origin(), "169.254.169.254:80");
  ASSERT_EQ(ParseUrl("https://api.metadata.cloud.ibm.com", UrlSchemes::kHttpAllowed, &u, &err), 0);
  EXPECT_TRUE(u.https);
  EXPECT_EQ(u.port, 443);
  EXPECT_EQ(ParseHttpsUrl("http://169.254.169.254", &u, &err), -EINVAL);
  EXPECT_EQ(err, "'http://169.254.169.254' is not an https:// URL");
  EXPECT_EQ(ParseUrl("ftp://x", UrlSchemes::kHttpAllowed, &u, &err), -EINVAL);
  EXPECT_EQ(err, "'ftp://x' is not an http:// or https:// URL");
  EXPECT_EQ(ParseUrl("http:/169.254.169.254", UrlSchemes::kHttpAllowed, &u, &err), -EINVAL);
  EXPECT_EQ(ParseUrl("http://u:p@169.254.169.254", UrlSchemes::kHttpAllowed, &u, &err), -EINVAL);
  EXPECT_EQ(err.find(":p@"), std::string::npos) << err;
}

TEST(UrlTest, CredentialsAreRefusedAndNotRepeated) {
  for (const char* url :
       {"https://user:s3cret@kms.test/", "https://s3cret@kms.test", "https://:s3cret@kms.test",
        "https://@kms.test", "https://s3cret:@kms.test"}) {
    HttpsUrl u;
    std::string err;
    EXPECT_EQ(ParseHttpsUrl(url, &u, &err), -EINVAL) << url;
    EXPECT_TRUE(err.starts_with("'https://***@kms.test"));
    EXPECT_TRUE(err.ends_with("' holds a user name or password: no credentials go in a URL"))
        << err;
  }
  HttpsUrl u;
  std::string err;
  EXPECT_EQ(ParseHttpsUrl("https://s3cret@a@kms.test", &u, &err), -EINVAL);
  EXPECT_EQ(err, "'https://***@kms.test' is not a URL curl can use: Bad hostname");
}

TEST(UrlTest, MessagesHideWhatCouldBeAUserPart) {
  EXPECT_EQ(UrlForMessage("https://kms.test:8443/api?x#y"), "https://kms.test:8443/api?x#y");
  EXPECT_EQ(UrlForMessage("https://u:pw@kms.test:1/"), "https://***@kms.test:1/");
  EXPECT_EQ(UrlForMessage("https:/u:pw@kms.test"), "https:/***@kms.test");
  EXPECT_EQ(UrlForMessage("u:pw@kms.test"), "***@kms.test");
  EXPECT_EQ(UrlForMessage("https://u:p/w#x@kms.test"), "https://***@kms.test");
  EXPECT_EQ(UrlForMessage("https://@"), "https://***@");
  EXPECT_EQ(UrlForMessage("https://kms.test/\n"), "https://kms.test/\\x0a");
}

}  // namespace
}  // namespace hpcs
