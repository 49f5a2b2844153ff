#include "core/kms.h"

#include <cerrno>
#include <utility>

#include "base/error.h"
#include "base/fileio.h"
#include "base/strutil.h"
#include "kp/url.h"
#include "tpm/tpm.h"

namespace hpcs {

int ReadTpmBlob(const Config& c, std::string* blob, struct stat* st, std::string* err) {
  if (int r = ReadRegularFile(c.tpm_blob, kMaxSealedBlobSize, blob, st, err); r < 0) {
    return WithContext(err, r, "api_key = TPM: ");
  }
  return 0;
}

int UnsealTpmBlob(const Config& c, std::string_view blob, const struct stat& st,
                  const KmsOptions& options, Secret* out, std::string* err) {
  if (int r = CheckTrusted(c.tpm_blob, st, err); r < 0) {
    return WithContext(err, r, "api_key = TPM: ");
  }
  TpmOptions to;
  to.tpm2_tcti = ResolveTpm2Tcti(c.tpm2_tcti);
  to.deadline = options.deadline;
  to.device_wait = options.tpm_device_wait;
  to.make_tpm = options.make_tpm;
  to.wait_for_tcsd = options.wait_for_tcsd;
  if (int r = UnsealApiKey(blob, to, out, err); r < 0) {
    return WithContext(err, r, "api_key = TPM: cannot unseal '" + c.tpm_blob + "': ");
  }
  return 0;
}

int ObtainApiKey(const Config& c, const KmsOptions& options, Secret* out, std::string* err) {
  if (c.auth == Auth::kVpc) {
    return Fail(err, -EINVAL, c.path + ": auth = vpc: there is no API key to use");
  }
  if (!c.api_key_from_tpm) {
    *out = Secret(c.api_key.data(), c.api_key.size());
    return 0;
  }
  if (int r = CheckTpmSupport(err); r < 0) return WithContext(err, r, c.path + ": ");
  std::string blob;
  struct stat st;
  if (int r = ReadTpmBlob(c, &blob, &st, err); r < 0) return r;
  return UnsealTpmBlob(c, blob, st, options, out, err);
}

int ExpandResolvePins(const Config& c, std::vector<std::string>* out, std::string* err) {
  std::vector<std::string> result;
  for (const auto& pin : c.resolve) {
    size_t colon = pin.find(':');
    std::string host = pin.substr(0, colon);
    std::string addr = colon == std::string::npos ? "" : pin.substr(colon + 1);
    if (host.empty() || addr.empty()) {
      return Fail(err, -EINVAL, "resolve pin '" + pin + "' is not HOST:ADDRESS");
    }
    // An IPv6 address goes in brackets for curl.
    if (addr.find(':') != std::string::npos && addr.front() != '[') addr = "[" + addr + "]";
    for (const std::string* url : {&c.endpoint_url, &c.iam_endpoint_url}) {
      HttpsUrl u;
      if (ParseHttpsUrl(*url, &u, nullptr) == 0 && u.host == ToLower(host)) {
        std::string entry = host + ":" + std::to_string(u.port) + ":" + addr;
        if (std::find(result.begin(), result.end(), entry) == result.end()) result.push_back(entry);
      }
    }
  }
  *out = std::move(result);
  return 0;
}

namespace {

int OpenClient(const Config& c, const KmsOptions& options, std::unique_ptr<TokenSource> tokens,
               Kms* out, std::string* err) {
  HttpOptions ho;
  ho.ca_file = c.ca_file;
  ho.proxy = c.proxy;
  ho.forgive_future_start = options.forgive_future_start;
  if (int r = CheckTrustedCa(c, ho, err); r < 0) return r;
  if (int r = ExpandResolvePins(c, &ho.resolve, err); r < 0) return r;
  Kms k;
  k.http = MakeCurlTransport(ho);
  KpSettings s{c.endpoint_url, c.iam_endpoint_url, c.service_instance_id};
  k.client = std::make_unique<KpClient>(std::move(s), std::move(tokens), k.http.get(),
                                        options.retry, options.deadline);
  *out = std::move(k);
  return 0;
}

}  // namespace

int OpenKms(const Config& c, const KmsOptions& options, Kms* out, std::string* err) {
  if (int r = CheckKmsSettings(c, err); r < 0) return r;
  if (c.auth == Auth::kVpc) {
    return OpenClient(
        c, options,
        MakeVpcTokenSource(c.metadata_endpoint_url, c.trusted_profile, c.service_instance_id), out,
        err);
  }
  Secret api_key;
  if (int r = ObtainApiKey(c, options, &api_key, err); r < 0) return r;
  return OpenKms(c, options, std::move(api_key), out, err);
}

int CheckTrustedCa(const Config& c, const HttpOptions& ho, std::string* err) {
  for (const std::string& path : TrustedCaPaths(ho)) {
    const bool configured = path == c.ca_file;
    const std::string what = configured
                                 ? c.path + ": [KP] ca_file: "
                                 : "the system's CA certificates, trusted for the KMS and IAM: ";
    struct stat st;
    if (stat(path.c_str(), &st) != 0) {
      int e = errno;
      if (!configured) continue;  // none there: nothing from it is trusted
      return WithContext(err, FailErrno(err, e, "cannot stat '" + path + "'"), what);
    }
    if (int r = CheckTrusted(path, st, err); r < 0) return WithContext(err, r, what);
  }
  return 0;
}

int OpenKms(const Config& c, const KmsOptions& options, Secret api_key, Kms* out,
            std::string* err) {
  if (int r = CheckKmsSettings(c, err); r < 0) return r;
  if (api_key.empty()) {
    return Fail(err, -EINVAL, c.path + ": the API key is empty");
  }
  return OpenClient(c, options, MakeApiKeyTokenSource(c.iam_endpoint_url, std::move(api_key)), out,
                    err);
}

int OpenKmsWithToken(const Config& c, const KmsOptions& options, const Secret& token,
                     Clock::time_point valid_until, std::string no_refresh, Kms* out,
                     std::string* err) {
  if (int r = CheckKmsSettings(c, err); r < 0) return r;
  if (int r = OpenClient(c, options, MakeApiKeyTokenSource(c.iam_endpoint_url, Secret()), out, err);
      r < 0) {
    return r;
  }
  out->client->UseToken(token, valid_until, std::move(no_refresh));
  return 0;
}

}  // namespace hpcs
