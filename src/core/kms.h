// Everything needed to talk to the KMS, built from a Config: the API key
// (literal, or unsealed from the TPM), the transport and the client.
#ifndef HPCS_CORE_KMS_H_
#define HPCS_CORE_KMS_H_

#include <sys/stat.h>

#include <memory>
#include <string>
#include <string_view>

#include "core/config.h"
#include "kp/http.h"
#include "kp/kp_client.h"
#include "tpm/tpm.h"

namespace hpcs {

struct KmsOptions {
  Deadline deadline;
  RetryPolicy retry;
  // api_key = TPM with a TPM 2.0 blob: how long to wait for the TPM device
  // node to appear (at boot its driver may still be loading).
  std::chrono::milliseconds tpm_device_wait{0};
  // Tests: the TPM to unseal with instead of the machine's.
  std::function<std::shared_ptr<Tpm>(TpmKind)> make_tpm;
  // TPM 1.2: wait (until the deadline) for a tcsd that refuses connections.
  bool wait_for_tcsd = false;
  // The clock is behind the build date (cert_time.h): HttpOptions.
  bool forgive_future_start = false;
};

struct Kms {
  std::unique_ptr<HttpTransport> http;
  std::unique_ptr<KpClient> client;
};

// The API key: the config's literal one, or with `api_key = TPM` the blob
// unsealed by the TPM (1.2 or 2.0, as the blob says), within the deadline:
// CheckTpmSupport, ReadTpmBlob, UnsealTpmBlob.
int ObtainApiKey(const Config& c, const KmsOptions& options, Secret* out, std::string* err);

// `api_key = TPM`, in steps for a caller that needs the blob itself too
// (report compares it with the initramfs's): reads c.tpm_blob, at most
// kMaxSealedBlobSize bytes, into *blob and its metadata into *st.
int ReadTpmBlob(const Config& c, std::string* blob, struct stat* st, std::string* err);
// Unseals a blob that ReadTpmBlob read (st: its metadata). The blob must be
// root's and not writable by others (CheckTrusted): it decides which TPM is
// asked and so where the API key goes.
int UnsealTpmBlob(const Config& c, std::string_view blob, const struct stat& st,
                  const KmsOptions& options, Secret* out, std::string* err);

// Refuses (-EPERM, naming the file and the chmod or chown) a CA bundle or
// directory the connections would trust (TrustedCaPaths: [KP] ca_file, else
// the system's) that fails CheckTrusted, as the config would: whoever can
// change it can answer for the KMS and IAM and be sent the API key. A
// missing ca_file is -ENOENT; a missing system one is no error.
int CheckTrustedCa(const Config& c, const HttpOptions& http, std::string* err);

// Checks the settings (CheckKmsSettings) and the CA (CheckTrustedCa) before
// anything is sent.
int OpenKms(const Config& c, const KmsOptions& options, Kms* out, std::string* err);
// The same with an API key already obtained (report unseals it once).
int OpenKms(const Config& c, const KmsOptions& options, Secret api_key, Kms* out, std::string* err);

// The same with a bearer token instead of an API key (the initramfs's, after
// the TPM lock: core/token_handoff.h), good until valid_until; no_refresh says
// why a new one cannot be had, for the errors once it is spent.
int OpenKmsWithToken(const Config& c, const KmsOptions& options, const Secret& token,
                     Clock::time_point valid_until, std::string no_refresh, Kms* out,
                     std::string* err);

// Turns HOST:ADDRESS pins into curl's HOST:PORT:ADDRESS for every port the
// configured endpoints use on that host. Returns -EINVAL on a malformed pin.
int ExpandResolvePins(const Config& c, std::vector<std::string>* out, std::string* err);

}  // namespace hpcs

#endif  // HPCS_CORE_KMS_H_
