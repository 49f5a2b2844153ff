// `hpcs-for-luks report`: will this machine unlock at its next reboot? A
// read-only look at the config, the KMS and its root key, every wrapped key
// and the volume it opens, the initramfs images, the TPM and the memory the
// volumes' key slots need at boot. Each finding names its subject and, when
// something is wrong, the remedy. Rendered as a short table or as one JSON
// object of a documented, stable shape (README: "report --json").
#ifndef HPCS_ADMIN_REPORT_H_
#define HPCS_ADMIN_REPORT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"
#include "kp/http.h"
#include "tpm/tpm.h"

namespace hpcs {

// ok: fine. info: worth knowing, nothing will fail. warn: at risk or
// degraded. fail: something will fail. warn and fail make the exit status 1.
enum class Level { kOk, kInfo, kWarn, kFail };
const char* LevelName(Level level);  // "ok", "info", "warn", "fail"

struct Finding {
  std::string check;  // "config", "tpm", "kms", "root-key", "key", "volume", "initramfs", "memory"
  std::string subject;  // the file, key, device or image it is about
  Level level = Level::kOk;
  std::string message;
  std::string remedy;  // what to do; empty when nothing
};

// The facts behind the findings, for --json.
struct KeyFacts {
  std::string type;  // "logon", "user"
  std::string description;
  std::string path;
  std::optional<bool> unwraps;  // unset: not tried (the KMS could not be used)
  std::string key_version;      // the version that wrapped it, as the KMS says
  std::optional<bool> current;  // wrapped with the root key's newest version
  struct Volume {
    std::string name;    // crypttab name
    std::string device;  // resolved source
    bool netdev = false;
    std::vector<int> keyslots;  // the token's key slots
    std::optional<bool> opens;  // every one of them opens with the key
  };
  std::vector<Volume> volumes;  // the volumes with a luks2-keyring token for it
};

// An hpcs LUKS2 token (core/hpcs_token.h) of a crypttab volume or a --device.
struct TokenFacts {
  std::string device;
  std::string name;  // the crypttab name; empty for a --device not in the crypttab
  int token_id = -1;
  std::vector<int> keyslots;
  std::string crk;
  std::string instance;
  std::string key_version;      // the version that wrapped it, as the KMS says
  std::optional<bool> unwraps;  // unset: not tried
  std::optional<bool> current;  // wrapped with the newest version of default_crk_uuid
  std::optional<bool> opens;    // every key slot opens with its passphrase
};

struct RootKeyFacts {
  std::string id;
  int state = -1;
  std::string state_name;
  std::string key_version;
  std::string key_version_created;
};

struct InitramfsFacts {
  std::string path;
  std::string kernel;              // empty when given by --initramfs
  std::vector<std::string> roles;  // "running", "newest"
  std::optional<bool> module;      // hpcs-unlock is in it; unset: not readable
  std::optional<bool> config_matches;
  std::vector<std::string> keys_missing;  // "user/DESC": in the key directory, not in the image
  std::vector<std::string> keys_removed;  // in the image, no longer in the key directory
  std::vector<std::string> keys_differ;   // both, other ciphertext
};

struct TpmFacts {
  std::string kind;  // "TPM 1.2", "TPM 2.0"
  bool unseals = false;
  // This boot's TPM lock (core/tpm_lock.h) is in place: PCR 15 is extended.
  bool locked = false;
  // Whether the blob unseals at a boot like this one, before the lock:
  // nullopt when it cannot be told (a TPM 1.2 blob after the lock).
  std::optional<bool> unseals_at_boot;
  // Whether the blob is sealed to the lock PCR (nullopt: cannot be told).
  std::optional<bool> lock_pcr_sealed;
};

struct MemoryFacts {
  uint64_t ram_kib = 0;
  uint64_t argon2_kib = 0;  // the sum over the volumes opened at boot
  struct Volume {
    std::string name;
    std::string device;
    uint64_t kib = 0;
  };
  std::vector<Volume> volumes;
};

struct Report {
  std::string config_path;
  std::string key_dir;
  std::string api_key_source;  // "config", "tpm", "vpc" (none: auth = vpc), or "" when missing
  std::optional<RootKeyFacts> root_key;
  std::vector<KeyFacts> keys;
  std::vector<TokenFacts> tokens;
  std::vector<InitramfsFacts> initramfs;
  std::optional<TpmFacts> tpm;
  std::optional<MemoryFacts> memory;
  std::vector<Finding> findings;

  void Add(std::string check, std::string subject, Level level, std::string message,
           std::string remedy = "");
  Level Worst() const;
  // 0 when every finding is ok or info, 1 otherwise.
  int ExitCode() const;
};

struct ReportOptions {
  std::string crypttab = "/etc/crypttab";
  // LUKS2 volumes whose hpcs tokens are checked besides the crypttab's.
  std::vector<std::string> devices;
  // Images to inspect; empty: the running kernel's and the newest
  // installed kernel's, found under fs_root.
  std::vector<std::string> initramfs;
  std::string fs_root = "/";  // where /boot, /lib/modules and /proc are
  Deadline deadline;          // for the KMS and the TPM
  // Tests: the TPM to unseal with instead of the machine's.
  std::function<std::shared_ptr<Tpm>(TpmKind)> make_tpm;
};

// Runs every check. Never fails as a whole: what cannot be checked is a
// finding too.
Report RunReport(const Config& config, const ReportOptions& options);

// The JSON object documented in README.md (one line, then a newline).
std::string RenderReportJson(const Report& r);
// The short table for people: one line per finding, remedies below.
std::string RenderReportTable(const Report& r);

}  // namespace hpcs

#endif  // HPCS_ADMIN_REPORT_H_
