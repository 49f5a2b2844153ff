// The entry points of tpm.h that need the TPM stacks, for a build without
// them (HPCS_TPM=OFF, compiled instead of tpm_stacks.cc and the stacks): each
// answers -EOPNOTSUPP with the one message below, so that `api_key = TPM`,
// seal-api-key and report say the same thing and no caller has an #ifdef.
#include <cerrno>
#include <memory>
#include <string>

#include "base/error.h"
#include "tpm/tpm.h"
#include "tpm/tpm_error.h"

namespace hpcs {
namespace {

constexpr std::string_view kNoTpmSupport =
    "this build has no TPM support (it was built with -DHPCS_TPM=OFF); "
    "api_key = TPM and seal-api-key need a build with HPCS_TPM=ON";

int NotSupported(std::string* err) { return Fail(err, -EOPNOTSUPP, std::string(kNoTpmSupport)); }

class NoTpm : public Tpm {
 public:
  explicit NoTpm(TpmKind kind) : kind_(kind) {}
  TpmKind kind() const override { return kind_; }
  int Unseal(std::string_view, Secret*, std::string* err) override { return NotSupported(err); }
  int Seal(const Secret&, std::span<const unsigned>, std::string*, std::string* err) override {
    return NotSupported(err);
  }
  int ReadPcr(unsigned, std::vector<uint8_t>*, std::string* err) override {
    return NotSupported(err);
  }
  int ExtendPcr(unsigned, std::span<const uint8_t>, std::string* err) override {
    return NotSupported(err);
  }

 private:
  TpmKind kind_;
};

}  // namespace

int CheckTpmSupport(std::string* err) { return NotSupported(err); }

std::unique_ptr<Tpm> MakeTpm(TpmKind kind, const TpmOptions&) {
  return std::make_unique<NoTpm>(kind);
}

// Without the blob formats no blob is recognised.
std::optional<TpmKind> BlobKind(std::string_view) { return std::nullopt; }

std::vector<std::string> BlobShortcomings(std::string_view) { return {}; }

int ParsePcrArgument(std::string_view, unsigned*, std::optional<std::array<uint8_t, 32>>*,
                     std::string* err) {
  return NotSupported(err);
}

int BlobPcrValues(std::string_view, std::map<unsigned, std::vector<uint8_t>>*, std::string* err) {
  return NotSupported(err);
}

int UnsealApiKey(std::string_view, const TpmOptions&, Secret*, std::string* err) {
  return NotSupported(err);
}

}  // namespace hpcs
