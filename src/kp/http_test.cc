#include "kp/http.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

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
    for (int fd : accepted_) close(fd);
  }
  // Whether a connection waits in the backlog of the listener on `port`.
  bool Knocked(int port) {
    for (int fd : listeners_) {
      sockaddr_in a{};
      socklen_t len = sizeof a;
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
      if (ntohs(a.sin_port) != port) continue;
      pollfd p{fd, POLLIN, 0};
      return poll(&p, 1, 0) == 1;
    }
    return false;
  }
  // Accepts the connections waiting on the listener of `port`; how many.
  int AcceptAll(int port) {
    int n = 0;
    for (int fd : listeners_) {
      sockaddr_in a{};
      socklen_t len = sizeof a;
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
      if (ntohs(a.sin_port) != port) continue;
      for (pollfd p{fd, POLLIN, 0}; poll(&p, 1, 0) == 1; ++n) {
        accepted_.push_back(accept4(fd, nullptr, nullptr, SOCK_CLOEXEC));
      }
    }
    return n;
  }
  std::vector<int> listeners_;
  std::vector<int> accepted_;
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
  // The deadline leaves room for a loaded machine: a process given a fifth of
  // a core takes longer than 300 ms to reach the handshake.
  http->Start(&x, start + 1500ms);
  std::vector<HttpExchange*> done;
  http->Wait(start + 100ms, &done);  // woken before anything finished
  EXPECT_TRUE(done.empty());
  while (http->Running() > 0) http->Wait(start + 10s, &done);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_TRUE(x.response.timed_out);
  // Not long before the deadline: curl's own clock may end it a fraction of a
  // millisecond early (seen: 1499.78 ms).
  EXPECT_GE(Clock::now() - start, 1400ms);
  EXPECT_LT(Clock::now() - start, 3500ms);  // the deadline, with slack
}

TEST_F(CurlTransportTest, APreconnectIsNeverHandedBackNorCountedAsRunning) {
  auto start = Clock::now();
  {
    auto http = MakeCurlTransport({});
    // One that hangs in the handshake, one that is refused: neither comes back.
    http->Preconnect("https://localhost:" + std::to_string(Port(true)), start + 10s);
    http->Preconnect("https://localhost:" + std::to_string(Port(false)), start + 10s);
    EXPECT_EQ(http->Running(), 0u);
    std::vector<HttpExchange*> done;
    http->Wait(start + 10s, &done);  // nothing running: returns at once
    EXPECT_TRUE(done.empty());
    HttpExchange x;
    x.request.url = "https://localhost:" + std::to_string(Port(false)) + "/";
    http->Start(&x, start + 10s);
    EXPECT_EQ(http->Running(), 1u);
    while (http->Running() > 0) http->Wait(start + 10s, &done);
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0], &x);
    EXPECT_TRUE(x.response.transport_retryable) << x.response.transport_error;
  }  // the hanging one is still connecting: closed with the transport
  EXPECT_LT(Clock::now() - start, 5s);
}

TEST_F(CurlTransportTest, APreconnectWaitsUntilTheRunningExchangesHaveSentTheirRequests) {
  auto start = Clock::now();
  auto http = MakeCurlTransport({});
  // The exchange's server accepts nothing: it never gets to send its request.
  HttpExchange x;
  int stuck = Port(true);
  x.request.url = "https://localhost:" + std::to_string(stuck) + "/";
  http->Start(&x, start + 10s);
  int ahead = Port(true);
  http->Preconnect("https://localhost:" + std::to_string(ahead), start + 10s);
  std::vector<HttpExchange*> done;
  http->Wait(start + 300ms, &done);
  EXPECT_TRUE(done.empty());
  EXPECT_TRUE(Knocked(stuck));
  EXPECT_FALSE(Knocked(ahead)) << "connected before the exchange's request went out";
}

// Starts the connection ahead to `ahead` (it needs a Wait with an exchange
// running): an exchange refused at once carries it.
void StartAhead(HttpTransport& http, const std::string& ahead, int refused) {
  auto start = Clock::now();
  http.Preconnect(ahead, start + 10s);
  HttpExchange carrier;
  carrier.request.url = "https://localhost:" + std::to_string(refused) + "/";
  http.Start(&carrier, start + 10s);
  std::vector<HttpExchange*> done;
  while (http.Running() > 0) http.Wait(start + 10s, &done);
}

TEST_F(CurlTransportTest, AnExchangeToAHostWhoseSessionIsBeingMadeWaitsForIt) {
  auto http = MakeCurlTransport({});
  int slow = Port(true);  // accepts, never answers the TLS hello
  const std::string url = "https://localhost:" + std::to_string(slow);
  auto start = Clock::now();
  StartAhead(*http, url, Port(false));
  HttpExchange x;
  x.request.url = url + "/";
  http->Start(&x, start + 10s);
  EXPECT_EQ(http->Running(), 1u);
  std::vector<HttpExchange*> done;
  http->Wait(start + 200ms, &done);
  EXPECT_TRUE(done.empty());
  EXPECT_EQ(AcceptAll(slow), 1) << "only the connection ahead, while its handshake lasts";
  // It waits at most half a second for it, then goes its own way.
  http->Wait(start + 1500ms, &done);
  EXPECT_TRUE(done.empty());
  EXPECT_EQ(AcceptAll(slow), 1) << "the exchange, once the wait was over";
}

TEST_F(CurlTransportTest, AConnectionAheadThatFailedHoldsNothingBack) {
  auto http = MakeCurlTransport({});
  int gone = Port(false);
  const std::string url = "https://localhost:" + std::to_string(gone);
  auto start = Clock::now();
  StartAhead(*http, url, Port(false));
  HttpExchange x;
  x.request.url = url + "/";
  http->Start(&x, start + 10s);
  std::vector<HttpExchange*> done;
  while (http->Running() > 0) http->Wait(start + 10s, &done);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_TRUE(x.response.transport_retryable) << x.response.transport_error;
  // Refused like the one ahead, without waiting out the half second.
  EXPECT_LT(Clock::now() - start, 450ms);
}

TEST(HttpTest, FindsTheCaBundleOfDebianRhelAndSuse) {
  for (const char* want : {"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
                           "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
                           "/etc/ssl/ca-bundle.pem", "/var/lib/ca-certificates/ca-bundle.pem"}) {
    EXPECT_EQ(FindCaBundle([&](const std::string& p) { return p == want; }), want);
  }
  // Debian's first when there are several; nothing when there is none.
  EXPECT_EQ(FindCaBundle([](const std::string&) { return true; }),
            "/etc/ssl/certs/ca-certificates.crt");
  EXPECT_EQ(FindCaBundle([](const std::string&) { return false; }), "");
}

// --- Secrets in libcurl's memory (issue 10, item 6)

// A secret that exists in memory only while it is used: kept XORed, so that
// the copy the test keeps to look for it is not itself a match.
constexpr unsigned char kMask = 0x5a;
std::string Unmask(std::string_view masked) {
  std::string s(masked);
  for (char& c : s) c = static_cast<char>(c ^ kMask);
  return s;
}

// Whether the secret is anywhere in this process's writable memory, freed
// blocks included (glibc leaves their contents but the first 16 bytes).
bool InWritableMemory(std::string_view masked) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    unsigned long lo = 0, hi = 0;
    char perms[5] = {};
    if (sscanf(line.c_str(), "%lx-%lx %4s", &lo, &hi, perms) != 3) continue;
    if (perms[0] != 'r' || perms[1] != 'w' || line.find("[vvar]") != std::string::npos) continue;
    const auto* mem = reinterpret_cast<const unsigned char*>(lo);
    for (unsigned long i = 0; i + masked.size() <= hi - lo; ++i) {
      size_t k = 0;
      while (k < masked.size() && mem[i + k] == (static_cast<unsigned char>(masked[k]) ^ kMask)) {
        ++k;
      }
      if (k == masked.size()) return true;
    }
  }
  return false;
}

// One HTTP exchange with libcurl (plain HTTP on loopback: the transport
// itself speaks only HTTPS) that POSTs a small secret body, as the IAM
// request does; then looks for the secret in memory.
[[noreturn]] void PostASecretAndLook(std::string_view masked) {
  std::string err;
  if (HttpGlobalInit(&err) < 0) _exit(2);
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(ls, reinterpret_cast<sockaddr*>(&a), len) != 0 || listen(ls, 1) != 0 ||
      getsockname(ls, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    _exit(2);
  }
  std::thread server([ls] {
    int c = accept(ls, nullptr, nullptr);
    char buf[4096];
    ssize_t n = read(c, buf, sizeof buf);
    Wipe(buf, sizeof buf);
    const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    if (n > 0 && write(c, reply, sizeof reply - 1) < 0) _exit(2);
    close(c);
  });
  {
    Secret body = Secret::FromString("grant_type=apikey&apikey=");
    std::string plain = Unmask(masked);
    body.Append(plain);
    Wipe(plain.data(), plain.size());
    CURL* e = curl_easy_init();
    std::string url = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/identity/token";
    curl_easy_setopt(e, CURLOPT_URL, url.c_str());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body.view().data());
    if (curl_easy_perform(e) != CURLE_OK) _exit(2);
    curl_easy_cleanup(e);
  }
  server.join();
  close(ls);
  curl_global_cleanup();
  _exit(InWritableMemory(masked) ? 1 : 0);
}

TEST(HttpSecretsTest, LibcurlsCopyOfAPostBodyIsWipedWhenFreed) {
  // A fresh process (the death test's own), where HttpGlobalInit is the first
  // thing to touch libcurl.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  std::string masked;
  for (char c : std::string_view("k3y-0f-th3-4p1-k3y-Zq7vR2mX9pL4wN8s")) {
    masked.push_back(static_cast<char>(c ^ kMask));
  }
  EXPECT_EXIT(PostASecretAndLook(masked), testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace hpcs
