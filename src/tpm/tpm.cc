// The part of tpm.h that needs neither stack: kind names, the probe's
// verdicts, PCR defaults and warnings, the deadline around an unseal. What
// needs a stack is in tpm_stacks.cc, or tpm_none.cc in a build without them.
#include "tpm/tpm.h"

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
#include "tpm/tpm_error.h"
#include "tpm/tpm_probe.h"

namespace hpcs {
namespace {

using SteadyClock = std::chrono::steady_clock;

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

bool HaveTpm2(const TpmOptions& o) {
  return !o.tpm2_tcti.empty() || ProbeTpm(o.fs_root).kind == TpmKind::kTpm2;
}

// No TPM seen: TPM 1.2, whose tcsd then says what is wrong.
TpmKind DetectTpmKind(const TpmOptions& o) {
  if (!o.tpm2_tcti.empty()) return TpmKind::kTpm2;
  return ProbeTpm(o.fs_root).kind.value_or(TpmKind::kTpm1);
}

std::vector<unsigned> DefaultPcrs(TpmKind kind) {
  if (kind == TpmKind::kTpm1) return {4, 5, kLockPcr};
  return {7, 8, kLockPcr};
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
  if (!Has(pcrs, kLockPcr)) {
    w.push_back(chosen + " leave out PCR " + std::to_string(kLockPcr) +
                ", which hpcs-unlock extends once it is done with the TPM: without it, any "
                "root process can still unseal the API key for the rest of the boot (see "
                "README.md, \"The TPM lock\")");
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

}  // namespace hpcs
