#include "core/unlock.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

#include "base/encoding.h"
#include "base/json.h"
#include "testing/test_doubles.h"

namespace hpcs {
namespace {

using namespace std::chrono_literals;

// A KMS whose "ciphertext" is the base64 of the plaintext, so a test writes
// wrapped-key files by hand. Ciphertexts named in `refuse` get a 422.
class UnlockTest : public testing::Test {
 protected:
  UnlockTest()
      : http_(&clock_, [this](const HttpRequest& rq, HttpResponse* r) { Answer(rq, r); }),
        kp_({"https://kms.test", "https://iam.test", "inst"}, Secret::FromString("api-key-Rt5u"),
            &http_, RetryPolicy{.max_retries = 0}, clock_.Now() + 30s, &clock_) {}

  void Answer(const HttpRequest& rq, HttpResponse* r) {
    if (rq.url.find("/identity/token") != std::string::npos) {
      r->status = 200;
      r->body = Secret::FromString(R"({"access_token":"t","expires_in":3600})");
      return;
    }
    if (unreachable_) {
      r->transport_error = "Connection refused";
      return;
    }
    Json j = JsonParse(rq.body.view());
    std::string ct(JsonString(j.get(), "ciphertext").value_or(""));
    unwrapped_.push_back(ct);
    if (std::count(refuse_.begin(), refuse_.end(), ct)) {
      r->status = 422;
      r->body = Secret::FromString(
          R"({"resources":[{"errorMsg":"Unprocessable Entity","reasons":[{"code":"UNPROCESSABLE_CIPHERTEXT_ERR"}]}]})");
      return;
    }
    r->status = 200;
    r->body = Secret::FromString(R"({"plaintext":")" + ct + R"("})");
  }

  // A wrapped-key file for `plain` (as the tool writes it: one line).
  std::string Store(const std::string& rel, std::string_view plain) {
    std::string ct =
        Base64Encode(std::span(reinterpret_cast<const std::byte*>(plain.data()), plain.size()));
    dir_.Write(rel, ct + "\n");
    return ct;
  }

  int Unlock(UnlockRequest req, std::vector<KeyOutcome>* out) {
    req.key_dir = dir_.path();
    req.crk = "crk";
    std::string err;
    int r = UnlockKeys(req, kp_, keyring_, out, &err,
                       [&](const KeyOutcome& o) { reported_.push_back(o.key.desc); });
    EXPECT_GE(r, 0) << err;
    return r;
  }

  std::string Loaded(KeyType t, const std::string& desc) {
    auto it = keyring_.keys.find({t, desc});
    return it == keyring_.keys.end() ? "<none>" : it->second;
  }

  ScratchDir dir_;
  FakeClock clock_;
  ScriptedTransport http_;
  KpClient kp_;
  FakeKeyring keyring_;
  std::vector<std::string> unwrapped_;  // ciphertexts the KMS saw
  std::vector<std::string> refuse_;
  std::vector<std::string> reported_;  // on_key, in order
  bool unreachable_ = false;
};

TEST_F(UnlockTest, EveryKeyLandsByteForByteInOneWindow) {
  Store("user/luks:root", std::string("pass\0phrase\n", 12));
  Store("logon/luks:dm", "\x01\x02\xff");
  Store("user/.hidden", "not a key");
  dir_.Mkdir("user/a-directory");
  std::vector<KeyOutcome> out;
  Unlock({}, &out);
  ASSERT_EQ(out.size(), 2u);  // sorted: logon first
  EXPECT_EQ(out[0].key.desc, "luks:dm");
  EXPECT_EQ(out[1].key.path, dir_.path() + "/user/luks:root");
  for (const auto& o : out) EXPECT_EQ(o.result, 0) << o.error;
  EXPECT_EQ(Loaded(KeyType::kUser, "luks:root"), std::string("pass\0phrase\n", 12));
  EXPECT_EQ(Loaded(KeyType::kLogon, "luks:dm"), "\x01\x02\xff");
  EXPECT_EQ(unwrapped_.size(), 2u);
  EXPECT_EQ(http_.max_in_flight, 2u);
  EXPECT_EQ(reported_.size(), 2u);
  UnlockSummary s = SummarizeUnlock({}, out);
  EXPECT_EQ(s.loaded, 2);
  EXPECT_EQ(s.failed, 0);
}

TEST_F(UnlockTest, OneBadKeyIsNamedAndTheOthersLand) {
  Store("user/a", "alpha");
  refuse_.push_back(Store("user/b", "bravo"));
  Store("user/c", "charlie");
  Store("logon/noprefix", "x");
  std::vector<KeyOutcome> out;
  Unlock({}, &out);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0].result, -EINVAL);  // logon/noprefix: never sent
  EXPECT_NE(out[0].error.find("/logon/noprefix': a logon key description needs a 'prefix:'"),
            std::string::npos)
      << out[0].error;
  EXPECT_EQ(out[2].result, -EPROTO);
  EXPECT_NE(out[2].error.find("cannot unwrap '" + dir_.path() +
                              "/user/b': HTTP 422 UNPROCESSABLE_CIPHERTEXT_ERR"),
            std::string::npos)
      << out[2].error;
  EXPECT_FALSE(out[2].unreachable);
  EXPECT_EQ(Loaded(KeyType::kUser, "a"), "alpha");
  EXPECT_EQ(Loaded(KeyType::kUser, "b"), "<none>");
  EXPECT_EQ(Loaded(KeyType::kUser, "c"), "charlie");
  EXPECT_EQ(unwrapped_.size(), 3u);
  UnlockSummary s = SummarizeUnlock({}, out);
  EXPECT_EQ(s.loaded, 2);
  EXPECT_EQ(s.failed, 2);
  EXPECT_EQ(s.unreachable, 0);
}

TEST_F(UnlockTest, EveryKeyGetsTheTimeoutButALingeringOne) {
  Store("user/luks:root", "r");
  Store("logon/luks:dm", "d");
  Store("user/luks:stay", "s");
  dir_.Write("linger/user/luks:stay", "");
  dir_.Write("linger/logon/luks:root", "");  // the marker of another type
  std::vector<KeyOutcome> out;
  UnlockRequest req;
  req.key_timeout_s = 600;
  Unlock(req, &out);
  auto timeout = [&](KeyType t, const std::string& desc) {
    return keyring_.timeouts.at({t, desc});
  };
  EXPECT_EQ(timeout(KeyType::kUser, "luks:root"), 600u);
  EXPECT_EQ(timeout(KeyType::kLogon, "luks:dm"), 600u);
  EXPECT_EQ(timeout(KeyType::kUser, "luks:stay"), 0u);
  Unlock({}, &out);  // key_timeout_s 0: none
  EXPECT_EQ(timeout(KeyType::kUser, "luks:root"), 0u);
}

TEST_F(UnlockTest, OnlyTheKeysAskedForAndTheMissingOnesNamed) {
  Store("user/one", "1");
  Store("user/two", "2");
  std::vector<KeyOutcome> out;
  UnlockRequest req;
  req.only = {"two", "three"};
  Unlock(req, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(Loaded(KeyType::kUser, "one"), "<none>");
  EXPECT_EQ(Loaded(KeyType::kUser, "two"), "2");
  UnlockSummary s = SummarizeUnlock(req, out);
  EXPECT_EQ(s.missing, std::vector<std::string>{"three"});
  EXPECT_EQ(s.loaded, 1);
  EXPECT_EQ(s.failed, 1);
}

TEST_F(UnlockTest, SkipLoadedLeavesKeysInTheKeyringAlone) {
  Store("user/old", "new value");
  Store("user/fresh", "f");
  keyring_.keys[{KeyType::kUser, "old"}] = "old value";
  std::vector<KeyOutcome> out;
  UnlockRequest req;
  req.skip_loaded = true;
  Unlock(req, &out);
  EXPECT_EQ(Loaded(KeyType::kUser, "old"), "old value");
  EXPECT_EQ(Loaded(KeyType::kUser, "fresh"), "f");
  EXPECT_EQ(unwrapped_.size(), 1u);
  UnlockSummary s = SummarizeUnlock(req, out);
  EXPECT_EQ(s.already_loaded, 1);
  EXPECT_EQ(s.loaded, 1);
  // Without skip_loaded the key is replaced.
  Unlock({}, &out);
  EXPECT_EQ(Loaded(KeyType::kUser, "old"), "new value");
}

TEST_F(UnlockTest, AllRequestedKeysLoadedOnlyWhenNothingIsLeftToUnwrap) {
  UnlockRequest req;
  req.key_dir = dir_.path();
  int n = -1;
  EXPECT_FALSE(AllRequestedKeysLoaded(&req, keyring_, &n));  // no keys at all
  Store("user/a", "1");
  Store("logon/p:b", "2");
  EXPECT_FALSE(AllRequestedKeysLoaded(&req, keyring_, &n));
  keyring_.keys[{KeyType::kUser, "a"}] = "1";
  EXPECT_FALSE(AllRequestedKeysLoaded(&req, keyring_, &n));  // p:b is missing
  req.only = {"a"};
  ASSERT_TRUE(AllRequestedKeysLoaded(&req, keyring_, &n));
  EXPECT_EQ(n, 1);
  req.only = {"a", "no-such-file"};
  EXPECT_FALSE(AllRequestedKeysLoaded(&req, keyring_, &n));  // the run must name it
  req.only = {};
  keyring_.keys[{KeyType::kUser, "p:b"}] = "2";  // the same name, the other type
  EXPECT_FALSE(AllRequestedKeysLoaded(&req, keyring_, &n));
  keyring_.keys[{KeyType::kLogon, "p:b"}] = "2";
  ASSERT_TRUE(AllRequestedKeysLoaded(&req, keyring_, &n));
  EXPECT_EQ(n, 2);
  EXPECT_TRUE(unwrapped_.empty());
}

// hpcs-unlock --skip-loaded: AllRequestedKeysLoaded, then the unwraps of the
// same request. The key directory is read once: what changes in it after
// that first read is not seen (a second read would see it).
TEST_F(UnlockTest, SkipLoadedReadsTheKeyDirectoryOnce) {
  Store("user/loaded", "l");
  Store("user/fresh", "f");
  keyring_.keys[{KeyType::kUser, "loaded"}] = "l";
  UnlockRequest req;
  req.key_dir = dir_.path();
  req.skip_loaded = true;
  int n = -1;
  EXPECT_FALSE(AllRequestedKeysLoaded(&req, keyring_, &n));  // "fresh" is not loaded
  Store("user/later", "x");
  std::vector<KeyOutcome> out;
  Unlock(req, &out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].key.desc, "fresh");
  EXPECT_EQ(out[0].result, 0) << out[0].error;
  EXPECT_EQ(out[1].key.desc, "loaded");
  EXPECT_TRUE(out[1].already_loaded);
  EXPECT_EQ(Loaded(KeyType::kUser, "later"), "<none>");
  EXPECT_EQ(unwrapped_.size(), 1u);
}

TEST_F(UnlockTest, SkipLoadedReportsTheFirstReadsFailureWithoutASecondRead) {
  Store("user/a", "a");
  chmod((dir_.path() + "/user").c_str(), 0777);  // untrusted: the listing fails
  UnlockRequest req{dir_.path(), "crk", {}, true};
  int n = -1;
  EXPECT_FALSE(AllRequestedKeysLoaded(&req, keyring_, &n));
  chmod((dir_.path() + "/user").c_str(), 0700);  // a second read would succeed
  std::vector<KeyOutcome> out;
  std::string err;
  EXPECT_EQ(UnlockKeys(req, kp_, keyring_, &out, &err), -EPERM);
  EXPECT_NE(err.find("/user' is writable by group or others"), std::string::npos) << err;
  EXPECT_TRUE(http_.sent().empty());
}

TEST_F(UnlockTest, KeyringAndPayloadFailuresNameTheFile) {
  Store("user/refused", "r");
  Store("user/empty", "");
  dir_.Write("user/empty", "\n");  // an empty file is no wrapped key
  keyring_.fail_add["refused"] = -EDQUOT;
  std::vector<KeyOutcome> out;
  Unlock({}, &out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].key.desc, "empty");
  EXPECT_EQ(out[0].result, -EINVAL);
  EXPECT_NE(out[0].error.find("/user/empty' is empty"), std::string::npos) << out[0].error;
  EXPECT_EQ(out[1].result, -EDQUOT);
  EXPECT_NE(out[1].error.find("cannot load '" + dir_.path() + "/user/refused'"), std::string::npos)
      << out[1].error;
}

TEST_F(UnlockTest, AnUnreachableKmsIsToldApart) {
  Store("user/a", "a");
  Store("user/b", "b");
  unreachable_ = true;
  std::vector<KeyOutcome> out;
  Unlock({}, &out);
  for (const auto& o : out) {
    EXPECT_LT(o.result, 0);
    EXPECT_TRUE(o.unreachable);
    EXPECT_NE(o.error.find("cannot reach kms.test:443"), std::string::npos) << o.error;
  }
  UnlockSummary s = SummarizeUnlock({}, out);
  EXPECT_EQ(s.failed, 2);
  EXPECT_EQ(s.unreachable, 2);
}

TEST_F(UnlockTest, AMissingKeyDirectoryHasNoKeys) {
  std::vector<KeyOutcome> out;
  std::string err;
  UnlockRequest req{dir_.path() + "/nowhere", "crk", {}};
  EXPECT_EQ(UnlockKeys(req, kp_, keyring_, &out, &err), 0) << err;
  EXPECT_TRUE(out.empty());
  EXPECT_TRUE(http_.sent().empty());
}

TEST(WipeKeysTest, RevokesAllButLingeringKeys) {
  ScratchDir dir;
  dir.Write("user/gone", "x");
  dir.Write("user/stay", "x");
  dir.Write("logon/luks:gone", "x");
  dir.Write("logon/luks:absent", "x");
  dir.Write("linger/user/stay", "");
  FakeKeyring keyring;
  for (auto [t, d] : {std::pair{KeyType::kUser, "gone"},
                      {KeyType::kUser, "stay"},
                      {KeyType::kLogon, "luks:gone"}}) {
    keyring.keys[{t, d}] = "v";
  }
  int revoked = 0, kept = 0;
  std::vector<std::string> errors;
  EXPECT_EQ(WipeKeys(dir.path(), keyring, &revoked, &kept, &errors), 0);
  EXPECT_EQ(revoked, 2);
  EXPECT_EQ(kept, 1);
  EXPECT_TRUE(errors.empty());
  EXPECT_TRUE(keyring.Has(KeyType::kUser, "stay"));
  EXPECT_FALSE(keyring.Has(KeyType::kUser, "gone"));
  EXPECT_FALSE(keyring.Has(KeyType::kLogon, "luks:gone"));
}

}  // namespace
}  // namespace hpcs
