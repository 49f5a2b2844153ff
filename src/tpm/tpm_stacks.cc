// The entry points of tpm.h that need the TPM stacks (trousers, tpm2-tss):
// a build with HPCS_TPM=OFF compiles tpm_none.cc instead.
#include <cerrno>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "base/error.h"
#include "base/strutil.h"
#include "tpm/tpm.h"
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

}  // namespace

int CheckTpmSupport(std::string* /*err*/) { return 0; }

std::unique_ptr<Tpm> MakeTpm(TpmKind kind, const TpmOptions& options) {
  if (kind == TpmKind::kTpm1) return MakeTpm1(options);
  return MakeTpm2(options);
}

std::optional<TpmKind> BlobKind(std::string_view blob_text) {
  if (FirstLineIs(blob_text, kTpm1BlobHeader)) return TpmKind::kTpm1;
  if (FirstLineIs(blob_text, kTpm2BlobHeader)) return TpmKind::kTpm2;
  return std::nullopt;
}

int BlobPcrValues(std::string_view blob_text, std::map<unsigned, std::vector<uint8_t>>* out,
                  std::string* err) {
  if (BlobKind(blob_text) != TpmKind::kTpm2) {
    return Fail(err, -EOPNOTSUPP, "a TPM 1.2 blob keeps only a digest of its PCR values");
  }
  Tpm2Blob b;
  if (int r = ParseTpm2Blob(blob_text, &b, err); r < 0) return r;
  out->clear();
  for (size_t i = 0; i < b.pcrs.size(); ++i) {
    (*out)[b.pcrs[i]] = std::vector<uint8_t>(b.pcr_values[i].begin(), b.pcr_values[i].end());
  }
  return 0;
}

std::vector<std::string> BlobShortcomings(std::string_view blob_text) {
  Tpm2Blob blob;
  if (BlobKind(blob_text) != TpmKind::kTpm2 || ParseTpm2Blob(blob_text, &blob, nullptr) < 0 ||
      blob.primary_name.size > 0) {
    return {};
  }
  return {
      "the TPM 2.0 blob was sealed before the primary key's name was recorded, so a device "
      "between this machine and its TPM that answers in the TPM's place (and then reads "
      "the API key) is not noticed"};
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
