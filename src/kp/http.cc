#include "kp/http.h"

#include <curl/curl.h>
#include <unistd.h>
#ifdef HPCS_CURL_MBEDTLS
#include <mbedtls/ssl.h>
#endif

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>

#include "base/error.h"
#include "base/strutil.h"
#include "base/wipe_alloc.h"
#include "kp/ca_chain.h"
#include "kp/cert_time.h"
#include "kp/url.h"

namespace hpcs {
namespace {

struct CurlMultiDeleter {
  void operator()(CURLM* m) const { curl_multi_cleanup(m); }
};
struct CurlShareDeleter {
  void operator()(CURLSH* s) const { curl_share_cleanup(s); }
};
struct CurlEasyDeleter {
  void operator()(CURL* e) const { curl_easy_cleanup(e); }
};
struct CurlSlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using CurlEasy = std::unique_ptr<CURL, CurlEasyDeleter>;
using CurlSlist = std::unique_ptr<curl_slist, CurlSlistDeleter>;

// curl's callbacks are called from C: no exception may leave them. Returning
// anything but the size given fails the transfer (CURLE_WRITE_ERROR).
size_t WriteBody(char* p, size_t size, size_t n, void* user) noexcept {
  auto* resp = static_cast<HttpResponse*>(user);
  const size_t len = size * n;
  if (resp->body.size() + len > kMaxAnswerBody) {
    resp->too_large = true;
    return 0;
  }
  try {
    resp->body.Append(p, len);
  } catch (...) {
    return 0;
  }
  return len;
}

size_t ReadHeader(char* p, size_t size, size_t n, void* user) noexcept {
  auto* resp = static_cast<HttpResponse*>(user);
  try {
    std::string_view line(p, size * n);
    if (auto secs = ParseRetryAfter(line)) resp->retry_after_s = secs;
    if (auto type = HeaderValue(line, "content-type")) resp->content_type = Printable(*type, 100);
  } catch (...) {
    return 0;
  }
  return size * n;
}

// What every connection's SSL context gets (curl over mbedTLS only): the
// CA chain parsed once, and forgiving a future start date (cert_time.h).
struct MbedTlsSetup {
  std::unique_ptr<CaChain> ca;
  bool forgive_future_start = false;
};

#ifdef HPCS_CURL_MBEDTLS
CURLcode ApplyMbedTlsSetup(CURL* curl, void* ssl_ctx, void* user) noexcept {
  const auto* setup = static_cast<const MbedTlsSetup*>(user);
  mbedtls_ssl_conf_ca_chain(static_cast<mbedtls_ssl_config*>(ssl_ctx), setup->ca->get(), nullptr);
  if (setup->forgive_future_start) return CurlForgiveFutureStart()(curl, ssl_ctx, nullptr);
  return CURLE_OK;
}
#endif

bool IsRetryableCurlCode(CURLcode c) {
  switch (c) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:  // a reset during the handshake
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

// One running exchange: the easy handle plus header lists it points into.
// CURLOPT_PRIVATE maps the easy handle back to it.
struct Transfer {
  HttpExchange* x = nullptr;
  CURL* easy = nullptr;
  Deadline deadline;
  CurlSlist headers;
  // The Authorization header is linked into the list as a node whose data
  // points into the exchange's Secret, so curl's list never holds a copy of
  // the token: it is detached before the list is freed.
  curl_slist auth_node{};
  char error[CURL_ERROR_SIZE] = {};
  bool sent = false;  // connected, and its request is going out
  bool held = false;  // waits for a TLS session being made (not on the multi handle)
};

// "host:port" of an https URL ("" if it is not one).
std::string OriginOf(const std::string& url) {
  HttpsUrl u;
  return ParseHttpsUrl(url, &u, nullptr) == 0 ? u.Origin() : "";
}

// CURLOPT_PREREQFUNCTION: the connection is up and the request goes out now.
int RequestGoesOut(void* user, char*, char*, int, int) noexcept {
  static_cast<Transfer*>(user)->sent = true;
  return CURL_PREREQFUNC_OK;
}

// The system's CA bundle, for when no ca_file is given; "" when there is
// none. The static build looks at every distribution's place (its libcurl
// knows Debian's only); the shared one uses libcurl's own.
std::string SystemCaBundle() {
#ifdef HPCS_CURL_MBEDTLS
  return FindCaBundle([](const std::string& p) { return access(p.c_str(), R_OK) == 0; });
#else
  const curl_version_info_data* v = curl_version_info(CURLVERSION_NOW);
  return v && v->cainfo ? v->cainfo : "";
#endif
}

class CurlTransport : public HttpTransport {
 public:
  explicit CurlTransport(const HttpOptions& o) : options_(o), ca_file_(o.ca_file) {
#ifdef HPCS_CURL_MBEDTLS
    if (ca_file_.empty()) ca_file_ = SystemCaBundle();
    // Parsed once here rather than by curl for every connection. If it cannot
    // be, curl is left to read the file and to fail with its own words.
    if (!ca_file_.empty() && CurlOverMbedTls()) {
      std::string ignored;
      mbed_.ca = CaChain::Load(ca_file_, &ignored);
      mbed_.forgive_future_start = o.forgive_future_start && CurlForgiveFutureStart();
    }
#endif
    multi_.reset(curl_multi_init());
    share_.reset(curl_share_init());
    curl_share_setopt(share_.get(), CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(share_.get(), CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_multi_setopt(multi_.get(), CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    for (const auto& r : o.resolve) {
      resolve_list_.reset(curl_slist_append(resolve_list_.release(), r.c_str()));
    }
  }

  ~CurlTransport() override {
    // Easy handles must go before the multi and share handles they used.
    for (auto& t : running_) curl_multi_remove_handle(multi_.get(), t->easy);
    for (const Warming& w : warming_) curl_multi_remove_handle(multi_.get(), w.easy);
    running_.clear();
    pool_.clear();
  }

  void Start(HttpExchange* x, Deadline deadline) override;
  void Wait(Clock::time_point wake, std::vector<HttpExchange*>* done) override;
  size_t Running() const override { return running_.size(); }
  void Preconnect(const std::string& url, Deadline deadline) override;

 private:
  CURL* TakeEasy() {
    if (!idle_.empty()) {
      CURL* e = idle_.back();
      idle_.pop_back();
      curl_easy_reset(e);
      return e;
    }
    pool_.emplace_back(curl_easy_init());
    return pool_.back().get();
  }
  // Which certificates are trusted, and how the dates are checked.
  void SetupTrust(CURL* e);
  // The options every connection gets: TLS, trust, proxy, resolving, timeouts.
  void SetupConnection(CURL* e, const std::string& url, Deadline deadline,
                       bool metadata_service = false);
  void Setup(Transfer& t);
  void Finish(Transfer& t, CURLcode code);
  // Starts the connections Preconnect asked for, once no running exchange
  // still waits for its own connection: those come first, as a client's CPU
  // spent on a handshake made ahead would hold up their requests.
  void StartPreconnects();
  // Exchanges started while a connection made ahead to their host is in its
  // TLS handshake wait for it (at most kSessionWait), and then resume its
  // session instead of each making a full handshake of its own: when the
  // token comes back before that handshake is done (a KMS as close as IAM),
  // 16 full handshakes would cost more than the wait. Returns when the next
  // held one is due (Clock::time_point::max() when none is held).
  Clock::time_point ReleaseHeld(Clock::time_point now);
  static constexpr std::chrono::milliseconds kSessionWait{500};
  // Takes a finished transfer off the multi handle and hands it back.
  void Complete(CURL* easy, CURLcode code, std::vector<HttpExchange*>* done);

  HttpOptions options_;
  std::string ca_file_;  // empty: libcurl's own default
  MbedTlsSetup mbed_;    // used when it holds a CA chain
  std::unique_ptr<CURLM, CurlMultiDeleter> multi_;
  std::unique_ptr<CURLSH, CurlShareDeleter> share_;
  CurlSlist resolve_list_;
  std::vector<CurlEasy> pool_;
  std::vector<CURL*> idle_;
  std::vector<std::unique_ptr<Transfer>> running_;
  std::vector<std::pair<std::string, Deadline>> preconnects_;  // not started yet
  struct Warming {  // a Preconnect's handle, on the multi handle
    CURL* easy;
    std::string origin;
    Clock::time_point since;
  };
  std::vector<Warming> warming_;
};

long RemainingMs(Deadline deadline) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return std::max<long>(ms, 1);
}

void CurlTransport::SetupTrust(CURL* e) {
#ifdef HPCS_CURL_MBEDTLS
  if (mbed_.ca) {
    // No file for curl to parse (not even its default): the chain comes in
    // through the SSL context callback.
    curl_easy_setopt(e, CURLOPT_CAINFO, nullptr);
    curl_easy_setopt(e, CURLOPT_CAPATH, nullptr);
    curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, ApplyMbedTlsSetup);
    curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, &mbed_);
    return;
  }
#endif
  if (options_.forgive_future_start && CurlForgiveFutureStart()) {
    curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, CurlForgiveFutureStart());
  }
  if (!ca_file_.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, ca_file_.c_str());
}

void CurlTransport::SetupConnection(CURL* e, const std::string& url, Deadline deadline,
                                    bool metadata_service) {
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, metadata_service ? "http,https" : "https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(e, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
  SetupTrust(e);
  // An explicit proxy, or none at all: environment proxy variables must not
  // silently reroute key material.
  // The metadata service is link-local: no proxy could reach it for us.
  const char* proxy = metadata_service ? "" : options_.proxy.c_str();
  curl_easy_setopt(e, CURLOPT_PROXY, proxy);
  if (*proxy == '\0') curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(e, CURLOPT_SHARE, share_.get());
  if (resolve_list_) curl_easy_setopt(e, CURLOPT_RESOLVE, resolve_list_.get());
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   std::min(options_.connect_timeout_ms, RemainingMs(deadline)));
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                   std::min(options_.request_timeout_ms, RemainingMs(deadline)));
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
}

void CurlTransport::Setup(Transfer& t) {
  HttpRequest& rq = t.x->request;
  CURL* e = t.easy;
  SetupConnection(e, rq.url, t.deadline, rq.metadata_service);
  curl_easy_setopt(e, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t.error);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, WriteBody);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &t.x->response);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, ReadHeader);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &t.x->response);
  curl_easy_setopt(e, CURLOPT_PRIVATE, &t);
  curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, RequestGoesOut);
  curl_easy_setopt(e, CURLOPT_PREREQDATA, &t);
  // Body: POSTFIELDS points into our Secret. curl copies a small one into its
  // request buffer, which our allocator wipes when freed (HttpGlobalInit).
  if (rq.method == "POST" || rq.method == "PUT") {
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, static_cast<long>(rq.body.size()));
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, rq.body.empty() ? "" : rq.body.view().data());
    if (rq.method == "PUT") curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "PUT");
  } else if (rq.method != "GET") {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, rq.method.c_str());
  }
  curl_slist* list = nullptr;
  for (const auto& h : rq.headers) list = curl_slist_append(list, h.c_str());
  // No "Expect: 100-continue" round trip on POSTs.
  list = curl_slist_append(list, "Expect:");
  t.headers.reset(list);
  if (!rq.auth_header.empty()) {
    // NUL-terminate inside the Secret so curl can read it as a C string.
    if (rq.auth_header.view().back() != '\0') rq.auth_header.Append("\0", 1);
    t.auth_node.data = reinterpret_cast<char*>(rq.auth_header.data());
    t.auth_node.next = nullptr;
    curl_slist* last = list;
    while (last->next) last = last->next;
    last->next = &t.auth_node;
  }
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, list);
}

void CurlTransport::Finish(Transfer& t, CURLcode code) {
  HttpResponse& rs = t.x->response;
  // Detach our node before curl_slist_free_all walks the list.
  for (curl_slist* n = t.headers.get(); n; n = n->next) {
    if (n->next == &t.auth_node) n->next = nullptr;
  }
  if (code == CURLE_OK) {
    curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &rs.status);
    return;
  }
  rs.status = 0;
  if (rs.too_large) {
    rs.transport_error = "the answer is larger than " + std::to_string(kMaxAnswerBody) + " bytes";
    rs.body.Clear();
    return;
  }
  rs.timed_out = code == CURLE_OPERATION_TIMEDOUT;
  rs.transport_retryable = IsRetryableCurlCode(code);
  std::string detail = t.error[0] ? std::string(t.error) : curl_easy_strerror(code);
  while (!detail.empty() && detail.back() == '\n') detail.pop_back();
  rs.transport_error = detail;
  rs.body.Clear();
}

void CurlTransport::Start(HttpExchange* x, Deadline deadline) {
  x->response = HttpResponse();
  auto t = std::make_unique<Transfer>();
  t->x = x;
  t->easy = TakeEasy();
  t->deadline = deadline;
  Setup(*t);
  std::string origin = OriginOf(x->request.url);
  t->held = std::any_of(warming_.begin(), warming_.end(),
                        [&](const Warming& w) { return w.origin == origin; });
  if (!t->held) curl_multi_add_handle(multi_.get(), t->easy);
  running_.push_back(std::move(t));
}

void CurlTransport::Preconnect(const std::string& url, Deadline deadline) {
  preconnects_.emplace_back(url, deadline);
}

void CurlTransport::StartPreconnects() {
  if (preconnects_.empty() ||
      std::any_of(running_.begin(), running_.end(), [](const auto& t) { return !t->sent; })) {
    return;
  }
  for (const auto& [url, deadline] : preconnects_) {
    if (Clock::now() >= deadline) continue;
    CURL* e = TakeEasy();
    SetupConnection(e, url, deadline);
    // TCP and TLS, then done: no request. Taking the handle off the multi
    // handle closes the connection (libcurl never reuses a CONNECT_ONLY
    // one); its TLS session stays in the share's cache for the next ones.
    curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(e, CURLOPT_PRIVATE, nullptr);
    curl_multi_add_handle(multi_.get(), e);
    warming_.push_back({e, OriginOf(url), Clock::now()});
  }
  preconnects_.clear();
}

Clock::time_point CurlTransport::ReleaseHeld(Clock::time_point now) {
  Clock::time_point next = Clock::time_point::max();
  for (const auto& t : running_) {
    if (!t->held) continue;
    std::string origin = OriginOf(t->x->request.url);
    auto w = std::find_if(warming_.begin(), warming_.end(),
                          [&](const Warming& v) { return v.origin == origin; });
    if (w != warming_.end() && now < w->since + kSessionWait) {
      next = std::min(next, w->since + kSessionWait);
      continue;
    }
    t->held = false;  // the session is made, or will not be soon
    curl_multi_add_handle(multi_.get(), t->easy);
  }
  return next;
}

void CurlTransport::Complete(CURL* easy, CURLcode code, std::vector<HttpExchange*>* done) {
  Transfer* t = nullptr;
  curl_easy_getinfo(easy, CURLINFO_PRIVATE, reinterpret_cast<char**>(&t));
  curl_multi_remove_handle(multi_.get(), easy);
  if (!t) {  // a Preconnect, done or failed: nothing to hand back
    std::erase_if(warming_, [easy](const Warming& w) { return w.easy == easy; });
    idle_.push_back(easy);
    return;
  }
  Finish(*t, code);
  idle_.push_back(easy);
  done->push_back(t->x);
  std::erase_if(running_, [t](const auto& r) { return r.get() == t; });
}

void CurlTransport::Wait(Clock::time_point wake, std::vector<HttpExchange*>* done) {
  const size_t before = done->size();
  while (!running_.empty()) {
    int still_running = 0;
    curl_multi_perform(multi_.get(), &still_running);
    int queued = 0;
    while (CURLMsg* m = curl_multi_info_read(multi_.get(), &queued)) {
      if (m->msg == CURLMSG_DONE) Complete(m->easy_handle, m->data.result, done);
    }
    // curl's own timeouts end these first; this is the safety net.
    auto now = Clock::now();
    Deadline first_deadline = Deadline::max();
    std::vector<CURL*> late;
    for (const auto& t : running_) {
      if (now >= t->deadline) late.push_back(t->easy);
      first_deadline = std::min(first_deadline, t->deadline);
    }
    for (CURL* e : late) Complete(e, CURLE_OPERATION_TIMEDOUT, done);
    Clock::time_point release = ReleaseHeld(now);
    StartPreconnects();
    if (done->size() > before || running_.empty() || now >= wake) return;
    auto until = std::min({wake, first_deadline, release});
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count();
    curl_multi_poll(multi_.get(), nullptr, 0, static_cast<int>(std::clamp<long long>(ms, 1, 1000)),
                    nullptr);
  }
}

}  // namespace

int HttpGlobalInit(std::string* err) {
  // libcurl over OpenSSL reads SSLKEYLOGFILE when it initialises and then
  // writes every TLS session's secrets to that file: a capture of the wire
  // would show the API key and the tokens. Nothing of ours wants that.
  unsetenv("SSLKEYLOGFILE");
  // libcurl copies small POST bodies (the IAM apikey= form, a wrap
  // plaintext) into its request buffer: all its memory is wiped when freed.
  CURLcode c = curl_global_init_mem(CURL_GLOBAL_DEFAULT, WipingMalloc, WipingFree, WipingRealloc,
                                    WipingStrdup, WipingCalloc);
  if (c != CURLE_OK) {
    return Fail(err, -EIO, std::string("libcurl initialisation failed: ") + curl_easy_strerror(c));
  }
  return 0;
}

std::string FindCaBundle(const std::function<bool(const std::string&)>& readable) {
  for (const char* p : kCaBundlePaths) {
    if (readable(p)) return p;
  }
  return "";
}

std::vector<std::string> TrustedCaPaths(const HttpOptions& options) {
  std::vector<std::string> paths{options.ca_file.empty() ? SystemCaBundle() : options.ca_file};
#ifndef HPCS_CURL_MBEDTLS
  const curl_version_info_data* v = curl_version_info(CURLVERSION_NOW);
  if (v && v->capath) paths.emplace_back(v->capath);
#endif
  std::erase(paths, "");
  return paths;
}

std::unique_ptr<HttpTransport> MakeCurlTransport(const HttpOptions& options) {
  return std::make_unique<CurlTransport>(options);
}

}  // namespace hpcs
