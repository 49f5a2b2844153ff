#include "tpm/tpm2.h"

#include <cstdlib>
#include <utility>

#include "tpm/tpm2_pcr.h"
#include "tpm/tpm2_seal.h"
#include "tpm/tpm2_unseal.h"

namespace hpcs {
namespace {

class EsysTpm : public Tpm {
 public:
  explicit EsysTpm(TpmOptions o) : o_(std::move(o)) {}
  TpmKind kind() const override { return TpmKind::kTpm2; }
  int Unseal(std::string_view blob_text, Secret* out, std::string* err) override {
    return tpm2::Unseal(o_, blob_text, out, err);
  }
  int Seal(const Secret& data, std::span<const unsigned> pcrs, std::string* blob_text,
           std::string* err) override {
    return tpm2::Seal(o_, data, pcrs, blob_text, err);
  }
  int ReadPcr(unsigned pcr, std::vector<uint8_t>* value, std::string* err) override {
    return tpm2::ReadPcr(o_, pcr, value, err);
  }
  int ExtendPcr(unsigned pcr, std::span<const uint8_t> digest, std::string* err) override {
    return tpm2::ExtendPcr(o_, pcr, digest, err);
  }

 private:
  TpmOptions o_;
};

}  // namespace

std::unique_ptr<Tpm> MakeTpm2(const TpmOptions& options) {
  // A shared libtss2 logs TPM errors to stderr by itself; we report them, so
  // keep it quiet unless the user asked for its log (the static build has no
  // logging at all).
  setenv("TSS2_LOG", "all+NONE", 0);
  return std::make_unique<EsysTpm>(options);
}

}  // namespace hpcs
