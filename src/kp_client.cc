#include "kp_client.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <set>
#include <thread>

#include "json.h"
#include "log.h"
#include "strutil.h"

namespace hpcs {

namespace {

constexpr char kKeyCollection[] = "application/vnd.ibm.kms.key+json";
constexpr int kListPage = 200;

std::string HostOf(std::string_view url) {
  std::string host;
  int port = 0;
  if (!SplitHttpsUrl(url, &host, &port)) return std::string(url);
  return host + ":" + std::to_string(port);
}

// "list: unexpected non-JSON response: <html>..." for a body we cannot use.
std::string Unexpected(std::string_view op, const Json& parsed, const Secret& body) {
  return std::string(op) +
         (parsed ? ": unexpected response: " : ": unexpected non-JSON response: ") +
         Printable(Trim(body.view()), 80);
}

}  // namespace

std::string NewUuid4() {
  unsigned char b[16];
  if (getrandom(b, sizeof b, 0) != sizeof b) {
    for (auto& c : b) c = static_cast<unsigned char>(RandomU32());
  }
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
    s.push_back(hex[b[i] >> 4]);
    s.push_back(hex[b[i] & 15]);
  }
  return s;
}

std::string DescribeHttpError(long status, std::string_view body) {
  std::string msg = "HTTP " + std::to_string(status);
  Json j = JsonParse(body);
  if (!j || !cJSON_IsObject(j.get())) {
    std::string_view t = Trim(body);
    if (!t.empty()) msg += ": unexpected non-JSON body: " + Printable(t, 80);
    return msg;
  }
  // IAM: {"errorCode":"BXNIM0415E","errorMessage":"..."}
  if (auto code = JsonString(j.get(), "errorCode")) msg += " " + Printable(*code, 64);
  if (auto m = JsonString(j.get(), "errorMessage")) return msg + ": " + Printable(*m, 300);
  // KMS: {"resources":[{"errorMsg":"...","reasons":[{"code":"..."}]}]}
  const cJSON* res = JsonArray(j.get(), "resources");
  const cJSON* first = res ? cJSON_GetArrayItem(res, 0) : nullptr;
  if (first) {
    const cJSON* reasons = JsonArray(first, "reasons");
    const cJSON* r0 = reasons ? cJSON_GetArrayItem(reasons, 0) : nullptr;
    if (auto code = r0 ? JsonString(r0, "code") : std::nullopt) msg += " " + Printable(*code, 64);
    if (auto m = JsonString(first, "errorMsg")) msg += ": " + Printable(*m, 300);
    if (auto m = r0 ? JsonString(r0, "message") : std::nullopt)
      msg += " (" + Printable(*m, 300) + ")";
  } else if (auto m = JsonString(j.get(), "message")) {
    msg += ": " + Printable(*m, 300);
  }
  return msg;
}

struct KpClient::Slot {
  KpCall* call;
  HttpExchange x;
  int retries = 0;
  bool refreshed = false;
  bool done = false;
  Clock::time_point due{};
  std::string last_error;
};

KpClient::KpClient(KpSettings settings, Secret api_key, HttpTransport* http, RetryPolicy retry,
                   Deadline deadline)
    : settings_(std::move(settings)),
      api_key_(std::move(api_key)),
      http_(http),
      retry_(retry),
      deadline_(deadline) {
  JsonInit();
}

bool KpClient::TokenFresh() const {
  return !auth_header_.empty() && Clock::now() < token_refresh_at_;
}

int KpClient::Authenticate(std::string* err) {
  if (TokenFresh()) return 0;
  auth_header_.Clear();
  ++token_requests_;
  KpCall call;
  call.method = "POST";
  call.path = settings_.iam_endpoint_url + "/identity/token";
  call.content_type = "application/x-www-form-urlencoded";
  call.body.Append("grant_type=urn%3Aibm%3Aparams%3Aoauth%3Agrant-type%3Aapikey&apikey=");
  UrlEncodeAppend(api_key_.view(), &call.body);
  call.unreachable = true;
  std::vector<Slot> slots(1);
  slots[0].call = &call;
  RunSlots(slots, /*with_token=*/false, {});
  auth_unreachable_ = call.unreachable;
  if (call.result < 0) {
    if (err)
      *err = "cannot get an IAM token from " + settings_.iam_endpoint_url + ": " + call.error;
    return call.result;
  }
  Json j = JsonParse(call.response.view());
  auto token = j ? JsonString(j.get(), "access_token") : std::nullopt;
  if (!token || token->empty()) {
    if (err) {
      *err = "cannot get an IAM token from " + settings_.iam_endpoint_url +
             ": the response has no access_token";
    }
    return -EPROTO;
  }
  auth_header_.Append("Authorization: Bearer ");
  auth_header_.Append(*token);
  // Refresh when 80% of the lifetime has passed (kp-api.md section 1).
  double ttl = JsonNumber(j.get(), "expires_in").value_or(3600);
  if (!(ttl > 0)) ttl = 60;
  token_refresh_at_ = Clock::now() + std::chrono::milliseconds(static_cast<long long>(ttl * 800));
  return 0;
}

void KpClient::RunSlots(std::vector<Slot>& slots, bool with_token,
                        const std::function<void(KpCall&)>& on_done) {
  auto finish = [&](Slot& s, int result, std::string error) {
    s.done = true;
    s.call->result = result;
    s.call->error = std::move(error);
    if (result == 0) s.call->response = std::move(s.x.response.body);
    if (on_done) on_done(*s.call);
  };
  auto fail_all_pending = [&](const std::string& why) {
    for (auto& s : slots) {
      if (!s.done) {
        std::string e = s.last_error.empty() ? why : s.last_error + " (" + why + ")";
        finish(s, s.call->status ? -EPROTO : -ETIMEDOUT, e);
      }
    }
  };

  while (true) {
    auto now = Clock::now();
    std::vector<HttpExchange*> batch;
    std::vector<Slot*> batch_slots;
    Clock::time_point next_due = Clock::time_point::max();
    for (auto& s : slots) {
      if (s.done) continue;
      if (s.due <= now && (max_parallel_ == 0 || batch_slots.size() < max_parallel_)) {
        batch_slots.push_back(&s);
      } else if (s.due <= now) {
        next_due = now;
      } else {
        next_due = std::min(next_due, s.due);
      }
    }
    if (batch_slots.empty()) {
      if (next_due == Clock::time_point::max()) return;  // all done
      if (next_due >= deadline_) {
        fail_all_pending("gave up: the deadline was reached");
        return;
      }
      std::this_thread::sleep_until(next_due);
      continue;
    }
    if (now >= deadline_) {
      fail_all_pending("gave up: the deadline was reached");
      return;
    }
    if (with_token && !TokenFresh()) {
      std::string terr;
      if (Authenticate(&terr) < 0) {
        for (auto& s : slots) {
          s.last_error.clear();
          if (!s.done) s.call->unreachable = auth_unreachable_;
        }
        fail_all_pending(terr);
        return;
      }
    }
    for (Slot* s : batch_slots) {
      KpCall& c = *s->call;
      HttpRequest& rq = s->x.request;
      rq = HttpRequest();
      rq.method = c.method;
      rq.url = with_token ? settings_.endpoint_url + c.path : c.path;
      c.correlation_id = NewUuid4();
      rq.headers.push_back("Accept: application/json");
      if (!c.content_type.empty()) rq.headers.push_back("Content-Type: " + c.content_type);
      if (with_token) {
        rq.headers.push_back("Bluemix-Instance: " + settings_.instance_id);
        rq.headers.push_back("Correlation-Id: " + c.correlation_id);
        rq.auth_header = Secret(auth_header_.data(), auth_header_.size());
      }
      for (const auto& h : c.extra_headers) rq.headers.push_back(h);
      rq.body = Secret(c.body.data(), c.body.size());
      ++c.attempts;
      batch.push_back(&s->x);
    }
    // Each answer is handled as it arrives: a key can be in the keyring
    // while slower requests are still running.
    bool refresh = false;
    auto handle = [&](Slot* s) {
      auto at = Clock::now();
      KpCall& c = *s->call;
      HttpResponse& r = s->x.response;
      c.status = r.status;
      std::string cid = with_token ? " (correlation id " + c.correlation_id + ")" : "";
      if (LogEnabled(LogLevel::kDebug)) {
        LogDebug(s->x.request.method + " " + s->x.request.url + " -> " +
                 (r.status ? "HTTP " + std::to_string(r.status) : r.transport_error) + cid +
                 ", attempt " + std::to_string(c.attempts));
      }
      if (r.status >= 200 && r.status < 300) {
        c.unreachable = false;
        finish(*s, 0, "");
        return;
      }
      bool retryable;
      if (r.status == 0) {
        s->last_error = "cannot reach " + HostOf(s->x.request.url) + ": " + r.transport_error;
        retryable = r.transport_retryable;
      } else {
        c.unreachable = false;
        s->last_error = DescribeHttpError(r.status, r.body.view()) + cid;
        if (with_token && r.status == 401 && !s->refreshed) {
          // The token expired or was revoked: fetch a new one, once.
          s->refreshed = true;
          refresh = true;
          s->due = at;
          return;
        }
        retryable = IsRetryableStatus(r.status);
      }
      bool may = retryable && (retry_.max_retries < 0 || s->retries < retry_.max_retries);
      if (!may) {
        std::string e = s->last_error;
        if (retryable) e += " (after " + std::to_string(c.attempts) + " attempts)";
        finish(*s, r.status == 0 ? (r.timed_out ? -ETIMEDOUT : -EHOSTUNREACH) : -EPROTO, e);
        return;
      }
      ++s->retries;
      s->due = at + BackoffDelay(retry_, s->retries, r.retry_after_s, RandomU32());
      if (s->due >= deadline_) {
        // Nothing but answers worth retrying until the deadline: the KMS
        // could not be used in time, which counts as not reached.
        c.unreachable = true;
        finish(*s, r.status == 0 ? -ETIMEDOUT : -EPROTO,
               s->last_error + " (gave up after " + std::to_string(c.attempts) +
                   " attempts: the deadline was reached)");
      }
    };
    http_->Perform(batch, deadline_, [&](HttpExchange& x) {
      for (Slot* s : batch_slots) {
        if (&s->x == &x) return handle(s);
      }
    });
    if (refresh) auth_header_.Clear();
  }
}

void KpClient::Run(std::span<KpCall* const> calls, const std::function<void(KpCall&)>& on_done) {
  std::vector<Slot> slots(calls.size());
  for (size_t i = 0; i < calls.size(); ++i) {
    slots[i].call = calls[i];
    calls[i]->result = 0;
    calls[i]->attempts = 0;
    calls[i]->unreachable = true;  // until any HTTP answer arrives
  }
  RunSlots(slots, /*with_token=*/true, on_done);
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
    Json j = JsonParse(call.response.view());
    const cJSON* res = j ? JsonArray(j.get(), "resources") : nullptr;
    if (!res) {
      // An empty collection may omit "resources".
      if (j && JsonObject(j.get(), "metadata")) break;
      if (err) *err = Unexpected("list", j, call.response);
      return -EPROTO;
    }
    int n = 0, fresh = 0;
    const cJSON* item = nullptr;
    cJSON_ArrayForEach(item, res) {
      ++n;
      std::string id(JsonString(item, "id").value_or(""));
      if (!seen.insert(id).second) continue;
      ++fresh;
      keys.push_back({id, std::string(JsonString(item, "name").value_or(""))});
    }
    if (n < kListPage) break;
    if (fresh == 0) {
      // A full page of keys we already have: the service ignores offset.
      if (err)
        *err =
            "list: the service returned the same keys again for offset=" + std::to_string(offset);
      return -EPROTO;
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
  Json j = JsonParse(call.response.view());
  const cJSON* rs = j ? JsonArray(j.get(), "resources") : nullptr;
  auto new_id = rs ? JsonString(cJSON_GetArrayItem(rs, 0), "id") : std::nullopt;
  if (!new_id || new_id->empty()) {
    if (err) *err = Unexpected("create", j, call.response);
    return -EPROTO;
  }
  *id = std::string(*new_id);
  return 0;
}

int KpClient::Get(std::string_view id, std::string* json, std::string* err) {
  KpCall call;
  call.path = "/api/v2/keys/" + UrlEncode(id);
  if (int r = RunOne(&call, err); r < 0) return r;
  Json j = JsonParse(call.response.view());
  const cJSON* rs = j ? JsonArray(j.get(), "resources") : nullptr;
  cJSON* key = rs ? cJSON_GetArrayItem(rs, 0) : nullptr;
  if (!key) {
    if (err) *err = Unexpected("get", j, call.response);
    return -EPROTO;
  }
  // Metadata only: a standard key's material stays out of the output.
  cJSON_DeleteItemFromObjectCaseSensitive(key, "payload");
  char* text = cJSON_Print(key);
  *json = text ? text : "{}";
  cJSON_free(text);
  return 0;
}

int KpClient::Delete(std::string_view id, std::string* err) {
  KpCall call;
  call.method = "DELETE";
  call.path = "/api/v2/keys/" + UrlEncode(id);
  return RunOne(&call, err);
}

int KpClient::Wrap(std::string_view crk, const Secret& plaintext, std::string* ciphertext,
                   std::string* err) {
  Json body(cJSON_CreateObject());
  std::string b64 = Base64Encode(plaintext.bytes());
  cJSON_AddStringToObject(body.get(), "plaintext", b64.c_str());
  Wipe(b64.data(), b64.size());
  KpCall call;
  call.method = "POST";
  call.path = "/api/v2/keys/" + UrlEncode(crk) + "/actions/wrap";
  call.content_type = "application/vnd.ibm.kms.key_action_wrap+json";
  call.body = JsonPrint(body.get());
  body.reset();
  if (int r = RunOne(&call, err); r < 0) return r;
  Json j = JsonParse(call.response.view());
  auto ct = j ? JsonString(j.get(), "ciphertext") : std::nullopt;
  if (!ct || ct->empty()) {
    if (err) *err = Unexpected("wrap", j, call.response);
    return -EPROTO;
  }
  *ciphertext = std::string(*ct);
  return 0;
}

KpCall KpClient::MakeUnwrapCall(std::string_view crk, std::string_view ciphertext) {
  Json body(cJSON_CreateObject());
  cJSON_AddStringToObject(body.get(), "ciphertext", std::string(Trim(ciphertext)).c_str());
  KpCall call;
  call.method = "POST";
  call.path = "/api/v2/keys/" + UrlEncode(crk) + "/actions/unwrap";
  call.content_type = "application/vnd.ibm.kms.key_action_unwrap+json";
  call.body = JsonPrint(body.get());
  return call;
}

int KpClient::ParseUnwrap(const KpCall& call, Secret* plaintext, std::string* err) {
  if (call.result < 0) {
    if (err) *err = call.error;
    return call.result;
  }
  Json j = JsonParse(call.response.view());
  auto pt = j ? JsonString(j.get(), "plaintext") : std::nullopt;
  if (!pt) {
    if (err) *err = Unexpected("unwrap", j, call.response);
    return -EPROTO;
  }
  if (Base64Decode(*pt, plaintext) < 0) {
    if (err) *err = "unwrap: the plaintext in the response is not base64";
    return -EPROTO;
  }
  return 0;
}

int KpClient::Unwrap(std::string_view crk, std::string_view ciphertext, Secret* plaintext,
                     std::string* err) {
  KpCall call = MakeUnwrapCall(crk, ciphertext);
  if (int r = RunOne(&call, err); r < 0) return r;
  return ParseUnwrap(call, plaintext, err);
}

}  // namespace hpcs
