#include "tpm/tpm.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>

#include "base/error.h"
#include "base/fileio.h"
#include "base/strutil.h"
#include "tpm/tpm1.h"
#include "tpm/tpm1_blob.h"
#include "tpm/tpm2.h"
#include "tpm/tpm2_blob.h"
#include "tpm/tpm_error.h"

namespace hpcs {
namespace {

using SteadyClock = std::chrono::steady_clock;

bool FirstLineIs(std::string_view text, std::string_view line) {
  if (!text.starts_with(line)) return false;
  std::string_view rest = text.substr(line.size());
  return rest.empty() || rest.front() == '\n' || rest.starts_with("\r\n");
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

std::string SysfsTpmVersion(const TpmOptions& o) {
  std::string v;
  if (ReadRegularFile(o.fs_root + "/sys/class/tpm/tpm0/tpm_version_major", 16, &v, nullptr,
                      nullptr) < 0) {
    return "";
  }
  return std::string(Trim(v));
}

bool Has(std::span<const unsigned> pcrs, unsigned pcr) {
  return std::find(pcrs.begin(), pcrs.end(), pcr) != pcrs.end();
}

// What an unseal hands back from its worker thread. Shared, so that a worker
// that outlives a deadline still writes into live memory; the Secret wipes
// itself whoever frees it last.
struct UnsealResult {
  std::mutex mu;
  std::condition_variable done_cv;
  bool done = false;
  int rc = 0;
  Secret key;
  std::string err;
};

// Strips one trailing newline; an empty key is an error.
int FinishApiKey(Secret key, Secret* out, std::string* err) {
  if (!key.empty() && key.data()[key.size() - 1] == '\n') key.Truncate(key.size() - 1);
  if (key.empty()) {
    return Fail(err, -ENODATA,
                "the TPM blob unsealed to an empty API key; " + std::string(kResealHint));
  }
  *out = std::move(key);
  return 0;
}

int TimedOut(TpmKind kind, std::string* err) {
  return Fail(err, -ETIMEDOUT,
              std::string("the ") + TpmKindName(kind) +
                  " did not answer before the deadline; check the TPM" +
                  (kind == TpmKind::kTpm1 ? " and tcsd" : ""));
}

}  // namespace

const char* TpmKindName(TpmKind kind) { return kind == TpmKind::kTpm1 ? "TPM 1.2" : "TPM 2.0"; }

std::string ResolveTpm2Tcti(std::string_view configured) {
  const char* env = getenv("HPCS_TPM2_TCTI");
  if (env && *env) return env;
  return std::string(configured);
}

std::unique_ptr<Tpm> MakeTpm(TpmKind kind, const TpmOptions& options) {
  if (kind == TpmKind::kTpm1) return MakeTpm1();
  return MakeTpm2(options);
}

std::optional<TpmKind> BlobKind(std::string_view blob_text) {
  if (FirstLineIs(blob_text, kTpm1BlobHeader)) return TpmKind::kTpm1;
  if (FirstLineIs(blob_text, kTpm2BlobHeader)) return TpmKind::kTpm2;
  return std::nullopt;
}

bool HaveTpm2(const TpmOptions& o) {
  if (!o.tpm2_tcti.empty()) return true;
  std::string v = SysfsTpmVersion(o);
  if (!v.empty()) return v == "2";
  return Exists(o.fs_root + "/dev/tpmrm0");
}

TpmKind DetectTpmKind(const TpmOptions& o) {
  if (HaveTpm2(o)) return TpmKind::kTpm2;
  return TpmKind::kTpm1;
}

std::vector<unsigned> DefaultPcrs(TpmKind kind) {
  if (kind == TpmKind::kTpm1) return {4, 5};
  return {7, 8};
}

int ParsePcrArgument(std::string_view arg, unsigned* pcr,
                     std::optional<std::array<uint8_t, 32>>* value, std::string* err) {
  size_t eq = arg.find('=');
  unsigned long long n = 0;
  if (!ParseUint(arg.substr(0, eq), &n) || n > kMaxTpm2Pcr) {
    return Fail(err, -EINVAL, "--pcr takes a number from 0 to 23 (or N=SHA256-HEX)");
  }
  std::optional<PcrValue> v;
  if (eq != std::string_view::npos) {
    PcrValue parsed;
    if (!ParsePcrValue(arg.substr(eq + 1), &parsed)) {
      return Fail(err, -EINVAL,
                  "--pcr " + std::to_string(n) +
                      "=VALUE: the value must be 64 hex digits (a SHA-256 PCR value)");
    }
    v = parsed;
  }
  *pcr = static_cast<unsigned>(n);
  *value = v;
  return 0;
}

std::string PcrList(std::span<const unsigned> pcrs) {
  std::vector<std::string> parts;
  for (unsigned pcr : pcrs) parts.push_back(std::to_string(pcr));
  return Join(parts, ", ");
}

std::vector<std::string> PcrCoverageWarnings(std::span<const unsigned> pcrs) {
  std::vector<std::string> w;
  const std::string chosen = "the PCRs sealed to (" + PcrList(pcrs) + ")";
  if (!Has(pcrs, 8) && !(Has(pcrs, 11) && Has(pcrs, 12))) {
    w.push_back(chosen +
                " do not cover the kernel command line (with GRUB: PCR 8; with a "
                "systemd-stub UKI: PCRs 11 and 12): anyone at the boot prompt can boot with "
                "rd.break and unseal the API key");
  }
  if (!Has(pcrs, 9) && !Has(pcrs, 11)) {
    w.push_back(chosen +
                " do not cover the initramfs (with GRUB: PCR 9; with a systemd-stub UKI: "
                "PCR 11): anyone who can write to /boot can put in an initramfs of their own "
                "and unseal the API key (see README.md, \"Which PCRs\")");
  } else {
    w.push_back(chosen +
                " include the initramfs's measurement (PCR 9 or 11), but the initramfs "
                "carries this blob: once dracut puts the new blob in, that PCR no longer "
                "holds the value sealed against and the unseal fails (see README.md, "
                "\"Which PCRs\")");
  }
  return w;
}

int UnsealApiKey(std::shared_ptr<Tpm> tpm, std::string_view blob_text,
                 SteadyClock::time_point deadline, Secret* out, std::string* err) {
  if (deadline == SteadyClock::time_point::max()) {
    Secret key;
    if (int rc = tpm->Unseal(blob_text, &key, err)) return rc;
    return FinishApiKey(std::move(key), out, err);
  }
  if (SteadyClock::now() >= deadline) return TimedOut(tpm->kind(), err);
  auto result = std::make_shared<UnsealResult>();
  std::thread worker;
  try {
    worker = std::thread([tpm, blob = std::string(blob_text), result] {
      Secret key;
      std::string e;
      int rc = tpm->Unseal(blob, &key, &e);
      std::lock_guard<std::mutex> lock(result->mu);
      result->rc = rc;
      result->key = std::move(key);
      result->err = std::move(e);
      result->done = true;
      result->done_cv.notify_all();
    });
  } catch (const std::system_error&) {
    // No thread to be had (memory limits): unseal here, unbounded.
    return UnsealApiKey(std::move(tpm), blob_text, SteadyClock::time_point::max(), out, err);
  }
  std::unique_lock<std::mutex> lock(result->mu);
  if (!result->done_cv.wait_until(lock, deadline, [&] { return result->done; })) {
    lock.unlock();
    worker.detach();  // it holds its own references; it may finish or not
    return TimedOut(tpm->kind(), err);
  }
  lock.unlock();
  worker.join();
  if (result->rc) {
    if (err) *err = std::move(result->err);
    return result->rc;
  }
  return FinishApiKey(std::move(result->key), out, err);
}

int UnsealApiKey(std::string_view blob_text, const TpmOptions& options, Secret* out,
                 std::string* err) {
  auto kind = BlobKind(blob_text);
  if (!kind) {
    return Fail(err, -EBADMSG,
                "not a sealed API key: the file starts neither with '" +
                    std::string(kTpm1BlobHeader) + "' (TPM 1.2, tpm_sealdata) nor with '" +
                    std::string(kTpm2BlobHeader) +
                    "' (TPM 2.0); seal the API key with `hpcs-for-luks seal-api-key`");
  }
  std::shared_ptr<Tpm> tpm = options.make_tpm ? options.make_tpm(*kind) : MakeTpm(*kind, options);
  int rc = UnsealApiKey(tpm, blob_text, options.deadline, out, err);
  // tcsd may still be starting: try again until the deadline.
  constexpr auto kTcsdRetry = std::chrono::milliseconds(250);
  while (rc == -ECONNREFUSED && *kind == TpmKind::kTpm1 && options.wait_for_tcsd &&
         !HaveTpm2(options) && SteadyClock::now() + kTcsdRetry < options.deadline) {
    std::this_thread::sleep_for(kTcsdRetry);
    rc = UnsealApiKey(tpm, blob_text, options.deadline, out, err);
  }
  // A TPM 1.2 blob where no tcsd runs and a TPM 2.0 is present: the blob is
  // the wrong kind, tcsd is not the problem.
  if (rc == -ECONNREFUSED && *kind == TpmKind::kTpm1 && HaveTpm2(options)) {
    return Fail(err, -EMEDIUMTYPE,
                "the blob was sealed to a TPM 1.2 (tpm_sealdata format), but this "
                "machine's TPM is a TPM 2.0 (and no tcsd runs); seal the API key to it "
                "with `hpcs-for-luks seal-api-key --tpm2`");
  }
  return rc;
}

}  // namespace hpcs
