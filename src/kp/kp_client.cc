#include "kp/kp_client.h"

#include <algorithm>
#include <cerrno>
#include <set>

#include "base/encoding.h"
#include "base/error.h"
#include "base/json.h"
#include "base/log.h"
#include "base/random.h"
#include "base/strutil.h"
#include "kp/url.h"

namespace hpcs {

namespace {

constexpr char kKeyCollection[] = "application/vnd.ibm.kms.key+json";
constexpr int kListPage = 200;

// "host:port" of a URL for messages, or the URL itself (without what could
// be a password) if it is not a plain https:// one.
std::string HostOf(std::string_view url) {
  HttpsUrl u;
  return ParseHttpsUrl(url, &u, nullptr) == 0 ? u.Origin() : UrlForMessage(url);
}

// The answer a finished call holds, for the parsers of kp_answers.h.
KmsAnswer AnswerOf(const KpCall& c) { return {c.status, c.response_type, c.response.view()}; }

}  // namespace

// A call on its way to an outcome. The IAM token request is one too (the
// last slot of a run), started when a KMS request needs a token.
struct KpClient::Slot {
  enum class State { kIdle, kWaiting, kRunning, kDone };
  KpCall* call = nullptr;
  bool is_token = false;  // the IAM request: its path is a whole URL, no token
  State state = State::kWaiting;
  Clock::time_point due{};
  AttemptState tries;
  int token_generation = 0;     // of the token its latest attempt carried
  Clock::time_point sent_at{};  // of its latest attempt
  HttpExchange x;
  std::string last_error;
};

KpClient::KpClient(KpSettings settings, Secret api_key, HttpTransport* http, RetryPolicy retry,
                   Deadline deadline, TimeSource* time)
    : KpClient(settings, MakeApiKeyTokenSource(settings.iam_endpoint_url, std::move(api_key)), http,
               retry, deadline, time) {}

KpClient::KpClient(KpSettings settings, std::unique_ptr<TokenSource> tokens, HttpTransport* http,
                   RetryPolicy retry, Deadline deadline, TimeSource* time)
    : settings_(std::move(settings)),
      tokens_(std::move(tokens)),
      http_(http),
      retry_(retry),
      deadline_(deadline),
      time_(time) {
  JsonInit();
}

KpClient::~KpClient() = default;

bool KpClient::TokenFresh(Clock::time_point now) const {
  return !auth_header_.empty() && now < token_refresh_at_;
}

void KpClient::Run(std::span<KpCall* const> calls, const std::function<void(KpCall&)>& on_done) {
  std::vector<Slot> slots(calls.size() + 1);
  for (size_t i = 0; i < calls.size(); ++i) {
    slots[i].call = calls[i];
    slots[i].tries.bearer_token = true;
    calls[i]->result = 0;
    calls[i]->attempts = 0;
    calls[i]->unreachable = true;  // until any HTTP answer arrives
  }
  KpCall iam;
  Slot& token = slots.back();
  token.call = &iam;
  token.is_token = true;
  token.state = Slot::State::kIdle;
  auth_error_.clear();
  Drive(slots, on_done);
}

void KpClient::Drive(std::vector<Slot>& slots, const OnDone& on_done) {
  std::vector<HttpExchange*> done;
  while (true) {
    const Clock::time_point now = time_->Now();
    const Pass pass = StartDue(slots, now, on_done);
    if (!pass.open) return;
    if (http_->Running() == 0) {
      if (pass.wake <= now) continue;  // a token request, just made due
      if (pass.wake >= deadline_) {
        FailWaiting(slots, on_done);
        continue;
      }
      time_->SleepUntil(pass.wake);
      continue;
    }
    done.clear();
    http_->Wait(std::min(pass.wake, deadline_), &done);
    for (HttpExchange* x : done) OnAnswer(slots[x->tag], time_->Now(), on_done);
  }
}

KpClient::Pass KpClient::StartDue(std::vector<Slot>& slots, Clock::time_point now,
                                  const OnDone& on_done) {
  using State = Slot::State;
  Slot& token = slots.back();
  Pass pass;
  auto consider = [&](Slot& s, size_t tag) {
    if (s.state != State::kWaiting) return;
    if (s.due > now) {
      pass.wake = std::min(pass.wake, s.due);
    } else if (now >= deadline_) {
      FinishPastDeadline(s, on_done);
    } else if (!s.is_token && !TokenFresh(now)) {
      if (!auth_error_.empty()) {
        s.call->unreachable = auth_unreachable_;
        Finish(s, s.call->status ? -EPROTO : -ETIMEDOUT, auth_error_, on_done);
      } else if (token.state == State::kIdle) {
        StartTokenRequest(token, now);
        pass.wake = now;
      }
    } else if (s.is_token || kms_throttle_.MayStart(now, kms_running_)) {
      StartAttempt(s, tag);
    } else if (now < kms_throttle_.hold_until()) {
      pass.wake = std::min(pass.wake, kms_throttle_.hold_until());
    }  // else: the window is full; a finished request makes room
  };
  // The token first: the KMS requests may be waiting for it.
  consider(token, slots.size() - 1);
  for (size_t i = 0; i + 1 < slots.size(); ++i) consider(slots[i], i);
  pass.open = token.state == State::kRunning ||
              std::any_of(slots.begin(), slots.end() - 1, [](const Slot& s) {
                return s.state == State::kWaiting || s.state == State::kRunning;
              });
  return pass;
}

void KpClient::FailWaiting(std::vector<Slot>& slots, const OnDone& on_done) {
  // The token first: KMS requests waiting for it then fail with its error.
  for (size_t i = slots.size(); i-- > 0;) {
    if (slots[i].state == Slot::State::kWaiting) FinishPastDeadline(slots[i], on_done);
  }
}

HttpRequest KpClient::PrepareRequest(const Slot& s) const {
  const KpCall& c = *s.call;
  HttpRequest rq;
  rq.method = c.method;
  rq.url = s.is_token ? c.path : settings_.endpoint_url + c.path;
  rq.headers.push_back("Accept: application/json");
  if (!c.content_type.empty()) rq.headers.push_back("Content-Type: " + c.content_type);
  if (!s.is_token) {
    rq.headers.push_back("Bluemix-Instance: " + settings_.instance_id);
    rq.headers.push_back("Correlation-Id: " + c.correlation_id);
    rq.auth_header = Secret(auth_header_.data(), auth_header_.size());
  } else {
    rq.auth_header = Secret(c.authorization.data(), c.authorization.size());
    rq.metadata_service = c.metadata_service;
  }
  for (const auto& h : c.extra_headers) rq.headers.push_back(h);
  rq.body = Secret(c.body.data(), c.body.size());
  return rq;
}

void KpClient::StartAttempt(Slot& s, size_t tag) {
  s.call->correlation_id = NewUuid4();
  ++s.call->attempts;
  s.x.request = PrepareRequest(s);
  s.x.tag = tag;
  s.token_generation = token_generation_;
  s.state = Slot::State::kRunning;
  s.sent_at = time_->Now();
  if (!s.is_token) ++kms_running_;
  http_->Start(&s.x, deadline_);
}

void KpClient::UseToken(const Secret& token, Clock::time_point valid_until,
                        std::string no_refresh) {
  auth_header_.Clear();
  auth_header_.Append("Authorization: Bearer ");
  auth_header_.Append(token.view());
  ++token_generation_;
  token_refresh_at_ = token_expires_at_ = valid_until;
  no_refresh_ = std::move(no_refresh);
}

bool KpClient::CurrentToken(Secret* token, Clock::time_point* expires_at) const {
  constexpr std::string_view kPrefix = "Authorization: Bearer ";
  if (auth_header_.size() <= kPrefix.size()) return false;
  *token = Secret(auth_header_.data() + kPrefix.size(), auth_header_.size() - kPrefix.size());
  *expires_at = token_expires_at_;
  return true;
}

void KpClient::StartTokenRequest(Slot& token, Clock::time_point now) {
  if (!no_refresh_.empty()) {
    // No API key to ask IAM with: every call that needs a token fails.
    auth_header_.Clear();
    auth_error_ = no_refresh_;
    return;
  }
  ++token_requests_;
  auth_header_.Clear();
  token_step_ = 0;
  StartTokenStep(token, now);
  // The KMS requests wait for this token; their host's TLS handshake need
  // not. One connection made now lets all of theirs resume its session.
  if (preconnect_ && !preconnected_ && HostOf(settings_.endpoint_url) != tokens_->Origin()) {
    preconnected_ = true;
    http_->Preconnect(settings_.endpoint_url, deadline_);
  }
}

void KpClient::StartTokenStep(Slot& token, Clock::time_point now) {
  KpCall next;
  std::string err;
  const KpCall* previous = token_step_ == 0 ? nullptr : token.call;
  if (tokens_->MakeStep(token_step_, previous, &next, &err) < 0) {
    token.state = Slot::State::kIdle;
    auth_unreachable_ = false;
    auth_error_ = err;
    return;
  }
  next.unreachable = true;
  *token.call = std::move(next);
  token.tries = AttemptState();
  token.last_error.clear();
  token.state = Slot::State::kWaiting;
  token.due = now;
}

void KpClient::AcceptToken(Slot& token) {
  token.state = Slot::State::kIdle;
  const KpCall& call = *token.call;
  auth_unreachable_ = call.unreachable;
  if (call.result < 0) {
    auth_error_ = tokens_->DescribeFailure(token_step_, call);
    return;
  }
  if (token_step_ + 1 < tokens_->Steps()) {
    ++token_step_;
    return StartTokenStep(token, time_->Now());
  }
  IamToken t;
  std::string why;
  if (ParseIamToken(AnswerOf(call), &t, &why) < 0) {
    KpCall unusable;
    unusable.status = call.status;
    unusable.error = why;
    auth_error_ = tokens_->DescribeFailure(token_step_, unusable);
    return;
  }
  auth_header_.Append("Authorization: Bearer ");
  auth_header_.Append(t.access_token.view());
  ++token_generation_;
  // Refresh when 80% of the lifetime has passed (kp-api.md section 1).
  token_refresh_at_ = time_->Now() + std::chrono::milliseconds(t.lifetime.count() * 800);
  token_expires_at_ = time_->Now() + t.lifetime;
}

void KpClient::LogAnswer(const Slot& s) const {
  if (!LogEnabled(LogLevel::kDebug)) return;
  const HttpResponse& r = s.x.response;
  LogDebug(s.x.request.method + " " + s.x.request.url + " -> " +
           (r.status ? "HTTP " + std::to_string(r.status) : r.transport_error) +
           (s.is_token ? "" : " (correlation id " + s.call->correlation_id + ")") + ", attempt " +
           std::to_string(s.call->attempts));
}

void KpClient::OnAnswer(Slot& s, Clock::time_point now, const OnDone& on_done) {
  using Next = Verdict::Next;
  KpCall& c = *s.call;
  const HttpResponse& r = s.x.response;
  c.status = r.status;
  if (r.status != 0 || r.too_large) c.unreachable = false;  // it answered
  LogAnswer(s);
  Verdict v = ClassifyAnswer(r, s.tries, retry_, now, deadline_, RandomU32());
  if (!s.is_token) {
    // The host's share of the service: an overload holds every request back.
    if (r.status == 429) {
      kms_throttle_.OnOverload(now, s.sent_at, kms_running_, r.retry_after_s, retry_, RandomU32());
      if (v.next == Verdict::Next::kRetry && kms_throttle_.hold_until() > v.retry_at) {
        v.retry_at = kms_throttle_.hold_until();
        if (v.retry_at >= deadline_) {
          v.next = Verdict::Next::kFail;
          v.gave_up = Verdict::GaveUp::kPastDeadline;
        }
      }
    } else if (r.status != 0) {
      kms_throttle_.OnSuccess(s.sent_at);
    }
    --kms_running_;
  } else if (r.status == 429) {
    kms_throttle_.Narrow();  // IAM is overloaded: so, most likely, is the KMS
  }
  if (v.next == Next::kDone) return Finish(s, 0, "", on_done);
  if (r.too_large) {
    s.last_error = r.transport_error + " (from " + HostOf(s.x.request.url) + ")";
  } else if (r.status == 0) {
    s.last_error = "cannot reach " + HostOf(s.x.request.url) + ": " + r.transport_error;
  } else {
    s.last_error = DescribeHttpError(r.status, r.body.view()) +
                   (s.is_token ? "" : " (correlation id " + c.correlation_id + ")");
  }
  switch (v.next) {
    case Next::kRefreshToken:
      s.tries.token_refreshed = true;
      // Unless another answer has already brought a newer token.
      if (s.token_generation == token_generation_) auth_header_.Clear();
      break;
    case Next::kRetry:
      ++s.tries.retries;
      break;
    default: {
      // Nothing but answers worth retrying until the deadline: the KMS could
      // not be used in time, which counts as not reached.
      if (v.gave_up == Verdict::GaveUp::kPastDeadline) c.unreachable = true;
      std::string attempts = std::to_string(c.attempts) + " attempts";
      std::string why = v.gave_up == Verdict::GaveUp::kNoRetriesLeft ? " (after " + attempts + ")"
                        : v.gave_up == Verdict::GaveUp::kPastDeadline
                            ? " (gave up after " + attempts + ": the deadline was reached)"
                            : "";
      if (!s.is_token && (r.status == 401 || r.status == 403)) why += tokens_->KmsRefusalHint();
      return Finish(s, v.result, s.last_error + why, on_done);
    }
  }
  s.state = Slot::State::kWaiting;
  s.due = v.retry_at;
}

void KpClient::Finish(Slot& s, int result, std::string error, const OnDone& on_done) {
  KpCall& c = *s.call;
  s.state = Slot::State::kDone;
  c.result = result;
  c.error = std::move(error);
  if (result == 0) {
    c.unreachable = false;
    c.response = std::move(s.x.response.body);
    c.response_type = std::move(s.x.response.content_type);
  }
  if (s.is_token) {
    AcceptToken(s);
  } else if (on_done) {
    on_done(c);
  }
}

void KpClient::FinishPastDeadline(Slot& s, const OnDone& on_done) {
  constexpr std::string_view kWhy = "gave up: the deadline was reached";
  std::string e =
      s.last_error.empty() ? std::string(kWhy) : s.last_error + " (" + kWhy.data() + ")";
  Finish(s, s.call->status ? -EPROTO : -ETIMEDOUT, e, on_done);
}

int KpClient::RunOne(KpCall* call, std::string* err) {
  KpCall* calls[] = {call};
  Run(calls);
  if (call->result < 0 && err) *err = call->error;
  return call->result;
}

int KpClient::List(std::vector<KeyInfo>* out, std::string* err) {
  std::vector<KeyInfo> keys;
  std::set<std::string> seen;
  for (int offset = 0;; offset += kListPage) {
    KpCall call;
    call.path =
        "/api/v2/keys?limit=" + std::to_string(kListPage) + "&offset=" + std::to_string(offset);
    if (int r = RunOne(&call, err); r < 0) return r;
    std::vector<KeyInfo> page;
    if (int r = ParseKeyList(AnswerOf(call), &page, err); r < 0) return r;
    size_t n = page.size(), fresh = 0;
    for (KeyInfo& k : page) {
      if (!seen.insert(k.id).second) continue;
      ++fresh;
      keys.push_back(std::move(k));
    }
    if (n < static_cast<size_t>(kListPage)) break;
    if (fresh == 0) {
      // A full page of keys we already have: the service ignores offset.
      return Fail(
          err, -EPROTO,
          "list: the service returned the same keys again for offset=" + std::to_string(offset));
    }
  }
  *out = std::move(keys);
  return 0;
}

int KpClient::Create(std::string_view name, bool root_key, const Secret* payload, std::string* id,
                     std::string* err) {
  Json body(cJSON_CreateObject());
  cJSON* meta = cJSON_AddObjectToObject(body.get(), "metadata");
  cJSON_AddStringToObject(meta, "collectionType", kKeyCollection);
  cJSON_AddNumberToObject(meta, "collectionTotal", 1);
  cJSON* res = cJSON_AddArrayToObject(body.get(), "resources");
  cJSON* key = cJSON_CreateObject();
  cJSON_AddItemToArray(res, key);
  cJSON_AddStringToObject(key, "type", kKeyCollection);
  cJSON_AddStringToObject(key, "name", std::string(name).c_str());
  cJSON_AddBoolToObject(key, "extractable", !root_key);
  if (payload) {
    std::string b64 = Base64Encode(payload->bytes());
    cJSON_AddStringToObject(key, "payload", b64.c_str());
    Wipe(b64.data(), b64.size());
  }
  KpCall call;
  call.method = "POST";
  call.path = "/api/v2/keys";
  call.content_type = kKeyCollection;
  call.extra_headers.push_back("Prefer: return=representation");
  call.body = JsonPrint(body.get());
  body.reset();
  if (int r = RunOne(&call, err); r < 0) return r;
  return ParseCreatedKey(AnswerOf(call), id, err);
}

int KpClient::Get(std::string_view id, std::string* json, std::string* err) {
  KpCall call;
  call.path = "/api/v2/keys/" + UrlEncode(id);
  if (int r = RunOne(&call, err); r < 0) return r;
  return ParseKeyMetadata(AnswerOf(call), json, err);
}

int KpClient::Delete(std::string_view id, std::string* err) {
  KpCall call;
  call.method = "DELETE";
  call.path = "/api/v2/keys/" + UrlEncode(id);
  return RunOne(&call, err);
}

namespace {

// "aad": [...] in a wrap or unwrap body, only when there is any.
void AddAad(cJSON* body, std::span<const std::string> aad) {
  if (aad.empty()) return;
  cJSON* list = cJSON_AddArrayToObject(body, "aad");
  for (const std::string& a : aad) cJSON_AddItemToArray(list, cJSON_CreateString(a.c_str()));
}

}  // namespace

int KpClient::Wrap(std::string_view crk, const Secret& plaintext, std::string* ciphertext,
                   std::string* err) {
  return Wrap(crk, plaintext, {}, ciphertext, nullptr, err);
}

int KpClient::Wrap(std::string_view crk, const Secret& plaintext, std::span<const std::string> aad,
                   std::string* ciphertext, std::string* key_version, std::string* err) {
  Json body(cJSON_CreateObject());
  std::string b64 = Base64Encode(plaintext.bytes());
  cJSON_AddStringToObject(body.get(), "plaintext", b64.c_str());
  Wipe(b64.data(), b64.size());
  AddAad(body.get(), aad);
  KpCall call;
  call.method = "POST";
  call.path = "/api/v2/keys/" + UrlEncode(crk) + "/actions/wrap";
  call.content_type = "application/vnd.ibm.kms.key_action_wrap+json";
  call.body = JsonPrint(body.get());
  body.reset();
  if (int r = RunOne(&call, err); r < 0) return r;
  return ParseWrapped(AnswerOf(call), ciphertext, err, key_version);
}

KpCall KpClient::MakeUnwrapCall(std::string_view crk, std::string_view ciphertext,
                                std::span<const std::string> aad) {
  Json body(cJSON_CreateObject());
  cJSON_AddStringToObject(body.get(), "ciphertext", std::string(Trim(ciphertext)).c_str());
  AddAad(body.get(), aad);
  KpCall call;
  call.method = "POST";
  call.path = "/api/v2/keys/" + UrlEncode(crk) + "/actions/unwrap";
  call.content_type = "application/vnd.ibm.kms.key_action_unwrap+json";
  call.body = JsonPrint(body.get());
  return call;
}

int KpClient::ParseUnwrap(const KpCall& call, Secret* plaintext, std::string* err,
                          std::string* key_version) {
  if (call.result < 0) {
    return Fail(err, call.result, call.error);
  }
  return ParseUnwrapped(AnswerOf(call), plaintext, err, key_version);
}

int KpClient::Unwrap(std::string_view crk, std::string_view ciphertext, Secret* plaintext,
                     std::string* err) {
  return Unwrap(crk, ciphertext, {}, plaintext, nullptr, err);
}

int KpClient::Unwrap(std::string_view crk, std::string_view ciphertext,
                     std::span<const std::string> aad, Secret* plaintext, std::string* key_version,
                     std::string* err) {
  KpCall call = MakeUnwrapCall(crk, ciphertext, aad);
  if (int r = RunOne(&call, err); r < 0) return r;
  return ParseUnwrap(call, plaintext, err, key_version);
}

}  // namespace hpcs
