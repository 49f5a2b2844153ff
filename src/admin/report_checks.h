// The checks of `report` (report.h), one file each, and what they share.
// RunReport calls them in this order; each adds findings and facts.
#ifndef HPCS_ADMIN_REPORT_CHECKS_H_
#define HPCS_ADMIN_REPORT_CHECKS_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "admin/luks.h"
#include "admin/report.h"
#include "base/secret.h"
#include "core/crypttab.h"
#include "core/keystore.h"
#include "core/kms.h"
#include "kp/kp_keys.h"

namespace hpcs {

// A crypttab volume whose LUKS2 header could be read.
struct ReportVolume {
  CrypttabEntry entry;
  std::string device;
  LuksHeader header;
};

struct ReportContext {
  ReportContext(const Config& c, const ReportOptions& o, Report& r)
      : config(c), options(o), report(r) {}

  const Config& config;
  const ReportOptions& options;
  Report& report;

  // api_key = TPM: the sealed API key as CheckTpm read it, once for the whole
  // report (null: unreadable), and the API key it unsealed (empty: none).
  std::optional<std::string> tpm_blob;
  Secret api_key;
  Kms kms;                                  // kms.client null: the KMS cannot be used
  std::optional<KeyMetadata> root_key;      // null: unknown
  std::vector<StoredKey> stored;            // the key directory
  std::map<std::string, Secret> plaintext;  // "user/DESC" -> the unwrapped key
  std::map<std::string, size_t> key_index;  // "user/DESC" -> index in report.keys
  std::vector<ReportVolume> volumes;        // from the crypttab
  std::vector<ReportVolume> devices;        // --device, not in the crypttab
  bool crypttab_read = false;
};

// "user/DESC" for a stored key (keyring.h's KeyLabel).
inline std::string KeyLabel(const StoredKey& k) { return KeyLabel(k.type, k.desc); }

// report_config.cc: values present, file modes, the key directory.
void CheckConfig(ReportContext& ctx);
// report_kms.cc: the API key (TPM unseal, once: CheckKms uses its key), an
// IAM token, the root key.
void CheckTpm(ReportContext& ctx);
void CheckKms(ReportContext& ctx);
// report_metadata.cc: auth = vpc: whether a process that is not root reaches
// the metadata service (and so the trusted profile's token).
void CheckMetadataAccess(ReportContext& ctx);
// report_keys.cc: every wrapped key unwraps; which key version wrapped it.
void CheckKeys(ReportContext& ctx);
// report_volumes.cc: the crypttab's LUKS2 volumes; each key's key slots open.
void ReadVolumes(ReportContext& ctx);
void CheckVolumes(ReportContext& ctx);
// report_tokens.cc: the --device volumes; each hpcs token of them and of
// the crypttab's volumes unwraps (bound to its volume), with the root key's
// newest version, and opens its key slots.
void ReadDevices(ReportContext& ctx);
void CheckTokens(ReportContext& ctx);
// report_initramfs.cc: the images carry our module, config and keys.
void CheckInitramfs(ReportContext& ctx);
// report_memory.cc: argon2 memory of the volumes opened at boot vs the RAM.
void CheckMemory(ReportContext& ctx);

}  // namespace hpcs

#endif  // HPCS_ADMIN_REPORT_CHECKS_H_
