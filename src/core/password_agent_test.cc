#include "core/password_agent.h"

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <thread>

#include "core/ask_password_testing.h"
#include "testing/test_doubles.h"

namespace hpcs {
namespace {

using std::chrono::milliseconds;

// Devices as image files, their "headers" as the test says: path -> names
// of luks2-keyring tokens, path -> hpcs tokens (as the lookup filtered them).
struct Headers {
  std::map<std::string, std::vector<std::string>> tokens;
  std::map<std::string, std::vector<std::string>> hpcs;
  int reads = 0;
  DeviceLookup Reader() {
    return [this](const std::string& device, DeviceClaims* claims, std::string* err) {
      ++reads;
      if (device.ends_with("unreadable.img")) {
        *err = "cannot open '" + device + "': Operation not permitted";
        return -EPERM;
      }
      auto it = tokens.find(device);
      if (it == tokens.end()) {
        *err = "'" + device + "' is not a LUKS2 device";
        return -EMEDIUMTYPE;
      }
      claims->key_names = it->second;
      claims->uuid = "uuid-of-" + device.substr(device.rfind('/') + 1);
      if (auto h = hpcs.find(device); h != hpcs.end()) claims->hpcs_tokens = h->second;
      return 0;
    };
  }
};

class PasswordAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    asks = dir.Mkdir("ask-password");
    root = dir.Write("root.img", "x");
    data = dir.Write("data.img", "y");
    other = dir.Write("other.img", "z");
    headers.tokens[root] = {"luks:root"};
    headers.tokens[data] = {"unrelated", "luks:data"};
    headers.tokens[other] = {"someone-else"};
  }
  std::vector<AgentEvent> Scan(PasswordAgent& agent) {
    std::vector<AgentEvent> events;
    agent.Scan(&events);
    return events;
  }
  ScratchDir dir;
  std::string asks, root, data, other;
  Headers headers;
};

TEST_F(PasswordAgentTest, ARequestForADeviceNotOursIsLeftAlone) {
  PasswordAgent agent(asks, {"luks:root"}, headers.Reader());
  std::string err;
  ASSERT_EQ(agent.Open(&err), 0) << err;
  agent.Offer("luks:root", Secret::FromString("root-pass"));
  TestAsker theirs(asks, "1", "cryptsetup:" + other);
  TestAsker unknown(asks, "2", "cryptsetup:" + dir.path() + "/not-luks.img");
  TestAsker not_cryptsetup(asks, "3", "something-else:" + root);
  auto events = Scan(agent);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, AgentEvent::Kind::kNotOurs);
  EXPECT_EQ(events[0].device, other);
  EXPECT_EQ(events[1].kind, AgentEvent::Kind::kNotOurs);
  EXPECT_NE(events[1].detail.find("not a LUKS2 device"), std::string::npos);
  EXPECT_EQ(theirs.Answer(100), "");
  EXPECT_EQ(unknown.Answer(), "");
  EXPECT_EQ(not_cryptsetup.Answer(), "");
  EXPECT_EQ(agent.waiting(), 0);
  // Each is looked at once, not at every scan.
  int reads = headers.reads;
  EXPECT_TRUE(Scan(agent).empty());
  EXPECT_EQ(headers.reads, reads);
}

TEST_F(PasswordAgentTest, AHeaderThatCannotBeReadIsReportedNotAnswered) {
  PasswordAgent agent(asks, {"luks:root"}, headers.Reader());
  std::string err;
  ASSERT_EQ(agent.Open(&err), 0) << err;
  agent.Offer("luks:root", Secret::FromString("root-pass"));
  TestAsker a(asks, "1", "cryptsetup:" + dir.path() + "/unreadable.img");
  auto events = Scan(agent);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, AgentEvent::Kind::kNoAnswer);
  EXPECT_NE(events[0].detail.find("Operation not permitted"), std::string::npos);
  EXPECT_EQ(a.Answer(100), "");
}

TEST_F(PasswordAgentTest, OursWaitsForItsKeyThenIsAnsweredOnce) {
  PasswordAgent agent(asks, {"luks:root", "luks:data"}, headers.Reader());
  std::string err;
  ASSERT_EQ(agent.Open(&err), 0) << err;
  TestAsker r(asks, "1", "cryptsetup:" + root);
  TestAsker d(asks, "2", "cryptsetup:" + data);
  EXPECT_TRUE(Scan(agent).empty());
  EXPECT_EQ(agent.waiting(), 2);
  // While they wait, their headers are not read again at every scan.
  int reads = headers.reads;
  EXPECT_TRUE(Scan(agent).empty());
  EXPECT_EQ(agent.waiting(), 2);
  EXPECT_EQ(headers.reads, reads);
  agent.Offer("luks:data", Secret::FromString("data-pass"));
  auto events = Scan(agent);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, AgentEvent::Kind::kAnswered);
  EXPECT_EQ(events[0].device, data);
  EXPECT_EQ(events[0].key, "luks:data");
  EXPECT_EQ(d.Answer(1000), "+data-pass");
  EXPECT_EQ(r.Answer(), "");
  EXPECT_EQ(agent.waiting(), 1);
  agent.Offer("luks:root", Secret::FromString("root-pass"));
  ASSERT_EQ(Scan(agent).size(), 1u);
  EXPECT_EQ(r.Answer(1000), "+root-pass");
  EXPECT_EQ(agent.waiting(), 0);
  // The same device asks again (our answer did not open it): not answered
  // with the same key again; the person at the console does it.
  d.Withdraw();
  TestAsker again(asks, "3", "cryptsetup:" + data);
  events = Scan(agent);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, AgentEvent::Kind::kNoAnswer);
  EXPECT_EQ(again.Answer(100), "");
}

TEST_F(PasswordAgentTest, ARequestPastItsTimeOrOfADeadAskerIsNotAnswered) {
  PasswordAgent agent(asks, {"luks:root"}, headers.Reader());
  std::string err;
  ASSERT_EQ(agent.Open(&err), 0) << err;
  agent.Offer("luks:root", Secret::FromString("root-pass"));
  TestAsker late(asks, "1", "cryptsetup:" + root, getpid(), 1);  // NotAfter long past
  EXPECT_TRUE(Scan(agent).empty());
  EXPECT_EQ(late.Answer(100), "");
}

TEST_F(PasswordAgentTest, WaitWakesForARequestAKeyTheEndAndTheStopDescriptor) {
  PasswordAgent agent(asks, {"luks:root"}, headers.Reader());
  std::string err;
  ASSERT_EQ(agent.Open(&err), 0) << err;
  auto far = Clock::now() + std::chrono::seconds(30);
  auto t0 = Clock::now();
  std::thread offer([&] {
    std::this_thread::sleep_for(milliseconds(50));
    agent.Offer("luks:root", Secret::FromString("root-pass"));
  });
  EXPECT_TRUE(agent.Wait(far, -1));
  offer.join();
  std::thread ask([&] {
    std::this_thread::sleep_for(milliseconds(50));
    TestAsker r(asks, "1", "cryptsetup:" + root);
    std::this_thread::sleep_for(milliseconds(300));
  });
  EXPECT_TRUE(agent.Wait(far, -1));
  ask.join();
  std::thread end([&] {
    std::this_thread::sleep_for(milliseconds(50));
    agent.Close();
  });
  EXPECT_TRUE(agent.Wait(far, -1));
  end.join();
  EXPECT_TRUE(agent.closed());
  Fd stop(eventfd(1, EFD_CLOEXEC));
  EXPECT_FALSE(agent.Wait(far, stop.get()));
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(10));
}

TEST_F(PasswordAgentTest, TheDirectoryMayComeLater) {
  std::string later = dir.path() + "/later";
  PasswordAgent agent(later, {"luks:root"}, headers.Reader());
  std::string err;
  ASSERT_EQ(agent.Open(&err), 0) << err;
  agent.Offer("luks:root", Secret::FromString("root-pass"));
  EXPECT_TRUE(Scan(agent).empty());
  dir.Mkdir("later");
  TestAsker r(later, "1", "cryptsetup:" + root);
  agent.Wait(Clock::now() + std::chrono::seconds(5), -1);
  ASSERT_EQ(Scan(agent).size(), 1u);
  EXPECT_EQ(r.Answer(1000), "+root-pass");
}

TEST_F(PasswordAgentTest, TheOfferingKeyringHandsOnUserKeysItAdded) {
  PasswordAgent agent(asks, {"luks:root", "dm:data"}, headers.Reader());
  FakeKeyring inner;
  inner.fail_add["luks:failed"] = -EDQUOT;
  auto keyring = OfferingKeyring(inner, agent);
  std::string pass = "root-pass", err;
  auto bytes = std::as_bytes(std::span(pass));
  ASSERT_EQ(keyring->Add(KeyType::kUser, "luks:root", bytes, 0, nullptr, &err), 0);
  ASSERT_EQ(keyring->Add(KeyType::kLogon, "dm:data", bytes, 0, nullptr, &err), 0);
  EXPECT_EQ(keyring->Add(KeyType::kUser, "luks:failed", bytes, 0, nullptr, &err), -EDQUOT);
  EXPECT_EQ(agent.offered(), 1);
  EXPECT_TRUE(inner.Has(KeyType::kUser, "luks:root"));
  EXPECT_TRUE(keyring->Has(KeyType::kLogon, "dm:data"));
}

TEST_F(PasswordAgentTest, AnHpcsTokenDeviceGetsOneJobAndItsAnswer) {
  std::string tok = dir.Write("tok.img", "t");
  headers.tokens[tok] = {};
  headers.hpcs[tok] = {R"({"type":"hpcs"})"};
  TokenJobs jobs;
  PasswordAgent agent(asks, {"luks:root"}, headers.Reader(), &jobs);
  std::string err;
  ASSERT_EQ(agent.Open(&err), 0) << err;
  TestAsker ask(asks, "1", "cryptsetup:" + tok);
  EXPECT_TRUE(Scan(agent).empty());
  EXPECT_EQ(agent.waiting(), 1);
  EXPECT_EQ(agent.waiting_for_tokens(), 1);
  EXPECT_TRUE(Scan(agent).empty());  // asked for once, not at every scan
  TokenJob job;
  ASSERT_TRUE(jobs.Next(Clock::now(), &job));
  EXPECT_EQ(job.uuid, "uuid-of-tok.img");
  EXPECT_EQ(job.device, tok);
  EXPECT_EQ(job.tokens, headers.hpcs[tok]);
  EXPECT_FALSE(jobs.Next(Clock::now(), &job));
  agent.OfferTokenAnswer(job.name, Secret::FromString("token-pass"));
  EXPECT_EQ(agent.offered(), 0);  // no key for the keyring: no linger for it
  auto events = Scan(agent);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, AgentEvent::Kind::kAnswered);
  EXPECT_EQ(events[0].key, TokenAnswerName("uuid-of-tok.img"));
  EXPECT_EQ(ask.Answer(), "+token-pass");
  EXPECT_EQ(agent.waiting_for_tokens(), 0);
}

TEST_F(PasswordAgentTest, AFailedTokenJobLeavesTheRequestToThePerson) {
  std::string tok = dir.Write("tok.img", "t");
  headers.tokens[tok] = {};
  headers.hpcs[tok] = {R"({"type":"hpcs"})"};
  TokenJobs jobs;
  PasswordAgent agent(asks, {}, headers.Reader(), &jobs);
  std::string err;
  ASSERT_EQ(agent.Open(&err), 0) << err;
  TestAsker ask(asks, "1", "cryptsetup:" + tok);
  EXPECT_TRUE(Scan(agent).empty());
  TokenJob job;
  ASSERT_TRUE(jobs.Next(Clock::now(), &job));
  agent.Refuse(job.name, "Key Protect refused the unwrap: bound to another volume");
  auto events = Scan(agent);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, AgentEvent::Kind::kNoAnswer);
  EXPECT_NE(events[0].detail.find("bound to another volume"), std::string::npos);
  EXPECT_EQ(ask.Answer(100), "");
  EXPECT_EQ(agent.waiting(), 0);
}

TEST_F(PasswordAgentTest, WithoutAJobQueueHpcsTokensAreNotOurs) {
  std::string tok = dir.Write("tok.img", "t");
  headers.tokens[tok] = {};
  headers.hpcs[tok] = {R"({"type":"hpcs"})"};
  PasswordAgent agent(asks, {"luks:root"}, headers.Reader());
  std::string err;
  ASSERT_EQ(agent.Open(&err), 0) << err;
  TestAsker ask(asks, "1", "cryptsetup:" + tok);
  auto events = Scan(agent);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, AgentEvent::Kind::kNotOurs);
}

TEST(TokenJobsTest, NextWaitsUntilAJobOrTheEndAndCloseDropsTheRest) {
  TokenJobs jobs;
  TokenJob job;
  auto t0 = Clock::now();
  EXPECT_FALSE(jobs.Next(t0 + milliseconds(50), &job));
  EXPECT_GE(Clock::now() - t0, milliseconds(50));
  std::thread submit([&] {
    std::this_thread::sleep_for(milliseconds(20));
    jobs.Submit({"a", "u", "d", {}});
  });
  EXPECT_TRUE(jobs.Next(Clock::now() + std::chrono::seconds(10), &job));
  submit.join();
  EXPECT_EQ(job.name, "a");
  EXPECT_TRUE(jobs.busy());
  jobs.Submit({"b", "u", "d", {}});
  jobs.Close();
  EXPECT_FALSE(jobs.Next(Clock::now() + std::chrono::seconds(10), &job));
  EXPECT_FALSE(jobs.busy());
  jobs.Submit({"c", "u", "d", {}});  // after Close: dropped
  EXPECT_FALSE(jobs.Next(Clock::now(), &job));
}

}  // namespace
}  // namespace hpcs
