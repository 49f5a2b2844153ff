#include "core/tpm_lock.h"

#include <mbedtls/md.h>
#include <sys/stat.h>

#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>

#include "base/encoding.h"
#include "base/error.h"
#include "base/fileio.h"
#include "base/strutil.h"

namespace hpcs {
namespace {

constexpr size_t kMaxRecordSize = 4096;

std::vector<uint8_t> Hash(TpmKind kind, std::span<const uint8_t> a, std::span<const uint8_t> b) {
  const mbedtls_md_info_t* md =
      mbedtls_md_info_from_type(kind == TpmKind::kTpm1 ? MBEDTLS_MD_SHA1 : MBEDTLS_MD_SHA256);
  std::vector<uint8_t> out(mbedtls_md_get_size(md));
  mbedtls_md_context_t h;
  mbedtls_md_init(&h);
  mbedtls_md_setup(&h, md, 0);
  mbedtls_md_starts(&h);
  mbedtls_md_update(&h, a.data(), a.size());
  mbedtls_md_update(&h, b.data(), b.size());
  mbedtls_md_finish(&h, out.data());
  mbedtls_md_free(&h);
  return out;
}

std::string Hex(const std::vector<uint8_t>& v) { return HexEncode(v); }

std::string Where(const std::string& path) { return "the TPM lock record '" + path + "': "; }

// The record of this boot, if there is one: 0 and *have; -errno for one that
// is there but cannot be trusted or read.
int ReadRecord(const std::string& path, TpmLockRecord* rec, bool* have, std::string* err) {
  *have = false;
  std::string text;
  struct stat st;
  int r = ReadRegularFile(path, kMaxRecordSize, &text, &st, err);
  if (r == -ENOENT) return 0;
  if (r < 0) return r;
  if (int t = CheckTrusted(path, st, err); t < 0) return t;
  if (int p = ParseTpmLockRecord(text, rec, err); p < 0) return WithContext(err, p, Where(path));
  *have = true;
  return 0;
}

}  // namespace

std::string ResolveTpmLockRecordPath() {
  const char* p = getenv("HPCS_TPM_LOCK_RECORD");
  return p && *p ? p : kTpmLockRecordPath;
}

std::vector<uint8_t> TpmLockDigest(TpmKind kind) {
  std::span<const uint8_t> event(reinterpret_cast<const uint8_t*>(kTpmLockEvent.data()),
                                 kTpmLockEvent.size());
  return Hash(kind, event, {});
}

std::vector<uint8_t> ExtendedPcrValue(TpmKind kind, std::span<const uint8_t> old,
                                      std::span<const uint8_t> digest) {
  return Hash(kind, old, digest);
}

std::string FormatTpmLockRecord(const TpmLockRecord& r) {
  return std::string("kind: ") + (r.kind == TpmKind::kTpm1 ? "tpm1" : "tpm2") +
         "\npcr: " + std::to_string(r.pcr) + "\nbefore: " + Hex(r.before) +
         "\nafter: " + Hex(r.after) + "\n";
}

int ParseTpmLockRecord(std::string_view text, TpmLockRecord* out, std::string* err) {
  TpmLockRecord r;
  bool kind = false, pcr = false;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty()) continue;
    size_t colon = line.find(": ");
    if (colon == std::string_view::npos) return Fail(err, -EBADMSG, "a line is not 'name: value'");
    std::string_view name = line.substr(0, colon), value = line.substr(colon + 2);
    if (name == "kind" && (value == "tpm1" || value == "tpm2")) {
      r.kind = value == "tpm1" ? TpmKind::kTpm1 : TpmKind::kTpm2;
      kind = true;
    } else if (name == "pcr") {
      unsigned long long n = 0;
      if (!ParseUint(value, &n) || n != kLockPcr) {
        return Fail(err, -EBADMSG,
                    "it names PCR " + std::string(value) + ", not " + std::to_string(kLockPcr));
      }
      pcr = true;
    } else if ((name == "before" || name == "after") &&
               HexDecode(value, name == "before" ? &r.before : &r.after) == 0) {
    } else {
      return Fail(err, -EBADMSG, "bad line '" + Printable(line, 40) + "'");
    }
  }
  size_t size = r.kind == TpmKind::kTpm1 ? 20 : 32;
  if (!kind || !pcr || r.before.size() != size || r.after.size() != size) {
    return Fail(err, -EBADMSG, "it lacks the kind, the PCR or a value of the right size");
  }
  *out = std::move(r);
  return 0;
}

int LockTpm(Tpm& tpm, const std::string& record_path, bool* already, std::string* err) {
  *already = false;
  std::vector<uint8_t> now;
  if (int r = tpm.ReadPcr(kLockPcr, &now, err); r < 0) return r;
  TpmLockRecord rec;
  bool have = false;
  if (int r = ReadRecord(record_path, &rec, &have, err); r < 0) {
    // A record that cannot be trusted must not stop the lock: extend, keep
    // the record as it is, and say why it was not used.
    std::string ignored;
    tpm.ExtendPcr(kLockPcr, TpmLockDigest(tpm.kind()), &ignored);
    return r;
  }
  if (have && rec.kind == tpm.kind() && rec.after == now) {
    *already = true;
    return 0;
  }
  std::vector<uint8_t> digest = TpmLockDigest(tpm.kind());
  if (int r = tpm.ExtendPcr(kLockPcr, digest, err); r < 0) return r;
  // A record of an earlier lock in this boot whose `after` the PCR no longer
  // holds (something else extended it since) keeps its `before`: that is
  // still the value at unseal time. Otherwise `before` is what we read.
  TpmLockRecord out{tpm.kind(), kLockPcr, have && rec.kind == tpm.kind() ? rec.before : now, {}};
  std::vector<uint8_t> after;
  if (int r = tpm.ReadPcr(kLockPcr, &after, err); r < 0) return r;
  out.after = after;
  if (size_t slash = record_path.rfind('/'); slash != std::string::npos && slash > 0) {
    mkdir(record_path.substr(0, slash).c_str(), 0700);  // an existing one is fine
  }
  if (int r = WriteFileAtomic(record_path, FormatTpmLockRecord(out), 0600, err); r < 0) {
    return WithContext(err, r, "PCR " + std::to_string(kLockPcr) + " is extended, but ");
  }
  return 0;
}

int LockTpmWithin(std::shared_ptr<Tpm> tpm, const std::string& record_path,
                  std::chrono::steady_clock::time_point deadline, bool* already, std::string* err) {
  struct Result {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false, already = false;
    int rc = 0;
    std::string err;
  };
  auto result = std::make_shared<Result>();
  std::thread worker;
  try {
    worker = std::thread([tpm, record_path, result] {
      bool a = false;
      std::string e;
      int rc = LockTpm(*tpm, record_path, &a, &e);
      std::lock_guard<std::mutex> lock(result->mu);
      result->rc = rc;
      result->already = a;
      result->err = std::move(e);
      result->done = true;
      result->cv.notify_all();
    });
  } catch (const std::system_error&) {
    return LockTpm(*tpm, record_path, already, err);  // no thread to be had
  }
  std::unique_lock<std::mutex> lock(result->mu);
  if (!result->cv.wait_until(lock, deadline, [&] { return result->done; })) {
    lock.unlock();
    worker.detach();
    return Fail(err, -ETIMEDOUT, "the TPM did not answer in time to be locked");
  }
  lock.unlock();
  worker.join();
  *already = result->already;
  if (result->rc < 0 && err) *err = result->err;
  return result->rc;
}

int PreLockValue(Tpm& tpm, const std::string& record_path, std::vector<uint8_t>* value,
                 bool* locked, std::string* err) {
  std::vector<uint8_t> now;
  if (int r = tpm.ReadPcr(kLockPcr, &now, err); r < 0) return r;
  TpmLockRecord rec;
  bool have = false;
  if (int r = ReadRecord(record_path, &rec, &have, err); r < 0) return r;
  // The record is of this boot (/run is new at every boot): whatever extended
  // the PCR after the lock, at unseal time it holds `before` again.
  *locked = have && rec.kind == tpm.kind();
  *value = *locked ? rec.before : now;
  return 0;
}

}  // namespace hpcs
