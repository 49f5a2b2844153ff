// /etc/hpcs-for-luks.ini, compatible with IBM's hpcs-for-luks 2.7.
//
//   [KP]  region, endpoint_url, iam_endpoint_url, service_instance_id,
//         api_key (or the word TPM), default_crk_uuid, ca_file,
//         auth (api-key or vpc), trusted_profile_id, trusted_profile_crn,
//         metadata_endpoint_url
//   [HFL] key_dir, tpm_blob, tpm2_tcti, initramfs_plain_api_key,
//         allow_boot_endpoints, update_wrapped_keys, key_timeout, token_timeout
#ifndef HPCS_CORE_CONFIG_H_
#define HPCS_CORE_CONFIG_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/secret.h"
#include "kp/vpc_identity.h"

namespace hpcs {

inline constexpr char kDefaultConfigPath[] = "/etc/hpcs-for-luks.ini";
inline constexpr char kDefaultKeyDir[] = "/var/lib/hpcs-for-luks";
inline constexpr char kDefaultIamEndpoint[] = "https://iam.cloud.ibm.com";
// How long an unwrapped key stays in the keyring unless it lingers: every
// volume of a slow boot has opened by then, _netdev and nofail ones too.
inline constexpr unsigned kDefaultKeyTimeoutS = 900;
// How long `hpcs-unlock --token-open` (the hpcs LUKS2 token's plugin) tries
// the KMS: systemd-cryptsetup tries a token once before its prompt, which
// must not wait long ([HFL] token_timeout, rd.hpcs.token_timeout=).
inline constexpr unsigned kDefaultTokenTimeoutS = 5;
inline constexpr unsigned kMaxTokenTimeoutS = 60;

// A parsed INI file: section -> key -> value, section and key names lowered.
class IniFile {
 public:
  IniFile() = default;
  IniFile(IniFile&&) = default;
  IniFile& operator=(IniFile&&) = default;
  // Values may be secrets (api_key): wiped before their memory is freed.
  ~IniFile();

  // Parses text; on a syntax error returns -EINVAL and names the line in *err.
  static int Parse(std::string_view text, IniFile* out, std::string* err);
  std::optional<std::string_view> Get(std::string_view section, std::string_view key) const;

 private:
  std::map<std::string, std::map<std::string, std::string>> sections_;
};

// [KP] auth: where the bearer token for the KMS comes from.
enum class Auth {
  kApiKey,  // IAM, with api_key (literal or sealed to the TPM)
  kVpc,     // the VPC instance's identity: no API key (kp/vpc_identity.h)
};

struct Config {
  std::string path;  // the file it came from, for messages
  Auth auth = Auth::kApiKey;
  // auth = vpc: the trusted profile (both empty: the instance's default one)
  // and the metadata service (CheckMetadataUrl). No boot option sets them.
  TrustedProfile trusted_profile;
  std::string metadata_endpoint_url = kDefaultMetadataEndpoint;
  // auth = vpc, and the file still holds an api_key, which is not read.
  bool api_key_ignored = false;
  std::string region;
  std::string endpoint_url;  // no trailing '/'; derived from region when empty
  std::string iam_endpoint_url = kDefaultIamEndpoint;
  std::string service_instance_id;
  Secret api_key;  // empty when api_key_from_tpm, and with auth = vpc
  bool api_key_from_tpm = false;
  std::string default_crk_uuid;
  std::string ca_file;  // empty: the system store
  std::string key_dir = kDefaultKeyDir;
  std::string tpm_blob;   // default <key_dir>/api-key-blob.txt
  std::string tpm2_tcti;  // TPM 2.0 TCTI; empty: /dev/tpmrm0, else /dev/tpm0
  bool initramfs_plain_api_key = false;
  // rd.hpcs.endpoint= and rd.hpcs.iam= may name any host, not only the
  // configured one or the service's (still https://HOST[:PORT] only: cmdline.h).
  bool allow_boot_endpoints = false;
  // After a rotation of the root key, replace a wrapped-key file with the
  // newer ciphertext an unwrap returns (process and the real root's
  // hpcs-unlock; never the initramfs).
  bool update_wrapped_keys = true;
  // api_key = TPM: once hpcs-unlock is done with the TPM in a boot, it
  // extends kLockPcr so that nothing later in that boot can unseal
  // (core/tpm_lock.h).
  bool tpm_lock = true;
  // Seconds after which the kernel expires each key we add, except a key with
  // a linger marker; 0: never ([HFL] key_timeout, rd.hpcs.key_timeout=).
  unsigned key_timeout_s = kDefaultKeyTimeoutS;
  // Seconds, 1..kMaxTokenTimeoutS ([HFL] token_timeout, rd.hpcs.token_timeout=).
  unsigned token_timeout_s = kDefaultTokenTimeoutS;
  std::string proxy;  // only from the kernel command line
  // HOST:ADDRESS pins, like curl --resolve (kernel command line).
  std::vector<std::string> resolve;
  // Set when the file holds a literal api_key and is readable by group/others.
  bool api_key_exposed = false;
};

// Reads and parses `path`. Values that are missing are not errors here; call
// CheckKmsSettings() before talking to the service.
int LoadConfig(const std::string& path, Config* out, std::string* err);
int ParseConfig(std::string_view text, const std::string& path, Config* out, std::string* err);

// Everything a KMS call needs, all problems reported at once, naming the file;
// then the URLs as ParseHttpsUrl reads them (the metadata service's as
// CheckMetadataUrl does).
int CheckKmsSettings(const Config& c, std::string* err);

// A key timeout: "0" (none) or ParseSeconds's 1 to 86400.
bool ParseKeyTimeout(std::string_view s, unsigned* out);
// A token timeout: 1 to kMaxTokenTimeoutS seconds.
bool ParseTokenTimeout(std::string_view s, unsigned* out);

// "https://<region>.kms.cloud.ibm.com" for a Key Protect region.
std::string EndpointForRegion(std::string_view region);

// The names ConfigValue knows: every setting, resolved (endpoint_url from the
// region, tpm_blob from key_dir), and api_key_source ("tpm", "literal",
// "vpc" or "none") in place of the API key itself, which it never gives.
inline constexpr const char* kConfigValueNames[] = {"auth",
                                                    "region",
                                                    "endpoint_url",
                                                    "iam_endpoint_url",
                                                    "service_instance_id",
                                                    "api_key_source",
                                                    "default_crk_uuid",
                                                    "ca_file",
                                                    "trusted_profile_id",
                                                    "trusted_profile_crn",
                                                    "metadata_endpoint_url",
                                                    "key_dir",
                                                    "tpm_blob",
                                                    "tpm2_tcti",
                                                    "initramfs_plain_api_key",
                                                    "allow_boot_endpoints",
                                                    "update_wrapped_keys",
                                                    "tpm_lock",
                                                    "key_timeout",
                                                    "token_timeout"};
std::optional<std::string> ConfigValue(const Config& c, std::string_view name);

// The config as a file again: [KP] and [HFL] with every setting, resolved, so
// that ParseConfig reads it back to the same values. The API key is left out
// (a comment says so) unless with_api_key; "api_key = TPM" is always there.
std::string FormatConfig(const Config& c, bool with_api_key);

// Strips trailing '/' characters and white space (also in turn: "x/ /").
std::string TrimUrl(std::string_view url);

}  // namespace hpcs

#endif  // HPCS_CORE_CONFIG_H_
