#include "http.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace std::chrono_literals;

namespace hpcs {
namespace {

TEST(HttpTest, UrlEncodeKeepsOnlyUnreservedCharacters) {
  EXPECT_EQ(UrlEncode("AZaz09-_.~"), "AZaz09-_.~");
  EXPECT_EQ(UrlEncode("a b/c?d=e&f+g%"), "a%20b%2Fc%3Fd%3De%26f%2Bg%25");
  EXPECT_EQ(UrlEncode(std::string_view("\0\xff", 2)), "%00%FF");
  Secret s = Secret::FromString("apikey=");
  UrlEncodeAppend("k+y/1", &s);
  EXPECT_EQ(s.view(), "apikey=k%2By%2F1");
}

TEST(HttpTest, SplitHttpsUrl) {
  struct Case {
    const char* url;
    const char* host;
    int port;
  };
  for (const Case& c : {Case{"https://kms.test", "kms.test", 443},
                        Case{"https://kms.test:8443/api/v2?x=1", "kms.test", 8443},
                        Case{"https://user:pw@kms.test:1/", "kms.test", 1},
                        Case{"https://[fd00::2]:9443/x", "[fd00::2]", 9443},
                        Case{"https://[fd00::2]", "[fd00::2]", 443}}) {
    std::string host;
    int port = 0;
    ASSERT_TRUE(SplitHttpsUrl(c.url, &host, &port)) << c.url;
    EXPECT_EQ(host, c.host) << c.url;
    EXPECT_EQ(port, c.port) << c.url;
  }
  for (const char* bad :
       {"http://kms.test", "https://", "https://:443", "https://h:0", "https://h:65536",
        "https://h:x", "https://[fd00::2", "https://[::1]x", "kms.test"}) {
    std::string host = "untouched";
    int port = 7;
    EXPECT_FALSE(SplitHttpsUrl(bad, &host, &port)) << bad;
    EXPECT_EQ(host, "untouched");
  }
}

TEST(HttpTest, RetryAfterHeader) {
  EXPECT_EQ(ParseRetryAfter("Retry-After: 2\r\n"), 2);
  EXPECT_EQ(ParseRetryAfter("retry-after:17"), 17);
  EXPECT_EQ(ParseRetryAfter("RETRY-AFTER:  0 \r\n"), 0);
  EXPECT_EQ(ParseRetryAfter("Retry-After: 999999999\r\n"), 86400);  // a day at most
  EXPECT_EQ(ParseRetryAfter("Retry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n"), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("Retry-After: -1\r\n"), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("X-Retry-After: 5\r\n"), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("Retry-After:"), std::nullopt);
}

// The curl transport's contract, on loopback and without TLS ever completing:
// every started exchange comes back from Wait exactly once.
class CurlTransportTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string err;
    ASSERT_EQ(HttpGlobalInit(&err), 0) << err;
  }
  // A loopback port with a listener that never accepts (connections hang in
  // the backlog) or, with listen == false, a port nobody listens on.
  int Port(bool listen_too) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    if (listen_too) {
      listen(fd, 16);
      listeners_.push_back(fd);
    } else {
      close(fd);
    }
    return ntohs(a.sin_port);
  }
  void TearDown() override {
    for (int fd : listeners_) close(fd);
  }
  std::vector<int> listeners_;
};

TEST_F(CurlTransportTest, RefusedConnectionsComeBackOnceEachAsRetryable) {
  auto http = MakeCurlTransport({});
  std::vector<HttpExchange> xs(3);
  for (size_t i = 0; i < xs.size(); ++i) {
    xs[i].request.url = "https://localhost:" + std::to_string(Port(false)) + "/";
    xs[i].tag = i;
    http->Start(&xs[i], Clock::now() + 10s);
  }
  EXPECT_EQ(http->Running(), 3u);
  std::vector<HttpExchange*> done;
  while (http->Running() > 0) http->Wait(Clock::now() + 10s, &done);
  ASSERT_EQ(done.size(), 3u);
  std::vector<size_t> tags;
  for (HttpExchange* x : done) {
    tags.push_back(x->tag);
    EXPECT_EQ(x->response.status, 0);
    EXPECT_TRUE(x->response.transport_retryable) << x->response.transport_error;
    EXPECT_FALSE(x->response.transport_error.empty());
  }
  std::sort(tags.begin(), tags.end());
  EXPECT_EQ(tags, (std::vector<size_t>{0, 1, 2}));
  http->Wait(Clock::now() + 10s, &done);  // nothing running: returns at once
  EXPECT_EQ(done.size(), 3u);
}

TEST_F(CurlTransportTest, AHangingServerEndsAtTheDeadline) {
  auto http = MakeCurlTransport({});
  HttpExchange x;
  x.request.url = "https://localhost:" + std::to_string(Port(true)) + "/";
  auto start = Clock::now();
  http->Start(&x, start + 300ms);
  std::vector<HttpExchange*> done;
  http->Wait(start + 100ms, &done);  // woken before anything finished
  EXPECT_TRUE(done.empty());
  while (http->Running() > 0) http->Wait(start + 10s, &done);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_TRUE(x.response.timed_out);
  EXPECT_LT(Clock::now() - start, 2300ms);  // the deadline, with slack
}

}  // namespace
}  // namespace hpcs
