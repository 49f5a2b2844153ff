// A TPM 1.2 blob made by tpm-tools, shared by the TPM 1.2 tests.
#ifndef HPCS_TPM_TPM1_TEST_BLOB_H_
#define HPCS_TPM_TPM1_TEST_BLOB_H_

#include <string_view>

namespace hpcs::testing {

// Written by `tpm_sealdata -z -p 4 -p 5` (tpm-tools 1.3.9.2) on swtpm from
// `echo my-api-key-123`. Used for format tests only; no TPM can unseal it.
constexpr std::string_view kTpmSealdataBlob =
    "-----BEGIN TSS-----\n"
    "-----TSS KEY-----\n"
    "AQEAAAARAAAABAEAAAABAAMAAQAAAAwAAAgAAAAAAgAAAAAAAAAAAAABAL6/ynfB\n"
    "sNdEY/UxA9WpU1xU0yIPa+vTxlS3/SLd2cHQOGE9MKvImBMQ2kknCt7OYS5O2rPo\n"
    "HbegIaM3LxRqKoVUDowYQ0w5odneod/qKFQClcv61/yNlkNtSW0ZiKigVMUuup+F\n"
    "OKzRg3cCBNmVWRvwIsmSNpC43HpIRvr1ydEtKnSlSl50/XgZ6alTbwu/I1CRMmL8\n"
    "1Kie7qIknlnwKiX6ttNlZymVhWv2y0I1R3GD76A7sIwVyq4fgxOBbH+gJkr4RZ4z\n"
    "ey/qLvKYECKpkI4jcALFqmhDQKtxhOaNI7BB2LHXsOnt9hg2ErwX8bOJnOAtKSk0\n"
    "T4PymJdptWGbUtkAAAEAf+ZCLLfORDG1fiCFqz33QF/uoWvqIq50gzSGoIZng19s\n"
    "108FrnaeXf19N3grSkZ2QjpUwtgkoss+xK9OAXR83bt6kSNAEH22S4cEGodzsjEX\n"
    "D9HDLCEMgPs8tUGgh2rr1+ftqY0H58ZovZxaEeZ45UG6uu8TmXRByEK3sQv5Ypx+\n"
    "Bl3OtGSbDcFMIUqHP5nbfIPSVK7li6yCFonqifPoV74Ion8+leIW2x6a+VtbG6cr\n"
    "HD3O7DdNU/dausnCQp5j87E0R6cDwZxSlkVZcZtLTuRN+RcVqKQXDNbPcUq9mcX9\n"
    "20lovUQZSPDccKaiC/6MZfmNzrm5cr9FfWtabCyP0w==\n"
    "-----ENC KEY-----\n"
    "Symmetric Key: AES-256-CBC\n"
    "AQEAAAAAACwAAjAAz3BA34xL8/Zzz1QFXQe+mKmChdLPcEDfjEvz9nPPVAVdB76Y\n"
    "qYKF0gAAAQB+0cg+z8quLiIhu3TQ3nQQUJgvGDyH/UdJ0uY9UWYEVba3Ub2NQZfQ\n"
    "RJfS/Cmvqij32LCL7Nsqi+3s88GMsfHBhDyl1Yceb1HEehtAjGzgnXKqVUsg89L+\n"
    "p+i+/XOXpdfCGkeClOQzWZYIQX2IWYx9ZpZB0zixjFZAmBoWkd5jeEAu0JFxeAhI\n"
    "68yqZPQTusr6UmZup89Ym4rsjML4PaIryixZRcpOb+NeYBya7Bq2NLIk7AxNp8FA\n"
    "TPa8iDs1K+51jT/Gispde44vMeEnZ5cLmYmrmaIgcS6n46w+07HWPOL2ozXZwnYR\n"
    "42Tr3/0R4Ep18XmxzhFTvMHdnAZk76Pw\n"
    "-----ENC DAT-----\n"
    "k9D/zR9PPJwIfifImkJGYQ==\n"
    "-----END TSS-----\n";

}  // namespace hpcs::testing

#endif  // HPCS_TPM_TPM1_TEST_BLOB_H_
