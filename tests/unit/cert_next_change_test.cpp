// CertVerdict::nextChange (core/certs/certs.hpp): the first instant after `now` at which
// judgeCertificates may say something else of the same facts, so that the daemon judges the
// certificates again exactly then instead of polling (issue 24). Each row checks both sides
// of the instant: the verdict one tick before it is the verdict at `now`, and at it it is not.

#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <string>

#include "cert_facts.hpp"

namespace ipopsec::test {
namespace {

constexpr auto kHour = std::chrono::hours(1);
constexpr WallTime::duration kTick{1};

std::string verdictText(const CertVerdict& v) {
  std::string s = v.usable ? "usable" : "unusable";
  for (const auto& e : v.errors) s += "\nE " + e;
  for (const auto& w : v.warnings) s += "\nW " + w;
  return s;
}

struct Row {
  const char* name;
  std::function<void(CertFacts&)> tweak;
  WallTime expected;  // nextChange when judged at kNow
  int warningDays = 30;
};

TEST(CertNextChange, EachRowsVerdictChangesAtItsNextChangeAndNotBefore) {
  const Row rows[] = {
      {"host certificate expires in 2 hours", [](CertFacts& f) { f.hostCert->notAfter = kNow + 2 * kHour; },
       kNow + 2 * kHour},
      {"host certificate in its warning window: the day count drops just after 10 days before expiry",
       [](CertFacts& f) { f.hostCert->notAfter = kNow + 10 * kDay + 5 * kHour; }, kNow + 5 * kHour + kTick},
      {"host certificate 40 days from expiry: the window opens 30 days before it",
       [](CertFacts& f) { f.hostCert->notAfter = kNow + 40 * kDay; }, kNow + 10 * kDay + kTick},
      {"exactly 10 days left: 9 days left one tick later", [](CertFacts& f) { f.hostCert->notAfter = kNow + 10 * kDay; },
       kNow + kTick},
      {"host certificate not valid yet", [](CertFacts& f) { f.hostCert->notBefore = kNow + 3 * kHour; },
       kNow + 3 * kHour},
      {"the CA expires before the host certificate", [](CertFacts& f) { f.caCerts[0].notAfter = kNow + 7 * kHour; },
       kNow + 7 * kHour},
      {"the CRL's nextUpdate passes in 90 minutes", [](CertFacts& f) { f.crl = goodCrl(kNow + 90 * std::chrono::minutes(1)); },
       kNow + 90 * std::chrono::minutes(1)},
      {"the CRL's renewal warning opens in 12 hours", [](CertFacts& f) { f.crl = goodCrl(kNow + 30 * kDay + 12 * kHour); },
       kNow + 12 * kHour + kTick},
      {"no warning window (expiry_warning_days 0): only the expiry",
       [](CertFacts& f) { f.hostCert->notAfter = kNow + 10 * kDay; }, kNow + 10 * kDay, 0},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    CertFacts f = good();
    row.tweak(f);
    CertPolicy policy;
    policy.expiryWarningDays = row.warningDays;
    const CertVerdict atNow = judgeCertificates(f, policy, kNow);
    ASSERT_TRUE(atNow.nextChange.has_value());
    EXPECT_EQ(atNow.nextChange->time_since_epoch().count(), row.expected.time_since_epoch().count());
    EXPECT_EQ(verdictText(judgeCertificates(f, policy, *atNow.nextChange - kTick)), verdictText(atNow))
        << "nothing changes before it";
    EXPECT_NE(verdictText(judgeCertificates(f, policy, *atNow.nextChange)), verdictText(atNow)) << "it changes at it";
  }
}

// Walking from one nextChange to the next visits every change of the verdict: judged at
// each hour of 40 days, the verdict never differs from the one at the last instant visited.
TEST(CertNextChange, FollowingNextChangeMissesNoChangeOverFortyDays) {
  CertFacts f = good();
  f.hostCert->notAfter = kNow + 35 * kDay + 7 * kHour;
  f.crl = goodCrl(kNow + 33 * kDay);
  CertPolicy policy;
  WallTime visited = kNow;
  CertVerdict last = judgeCertificates(f, policy, visited);
  int visits = 0;
  for (WallTime t = kNow; t < kNow + 40 * kDay; t += kHour) {
    while (last.nextChange && *last.nextChange <= t) {
      visited = *last.nextChange;
      last = judgeCertificates(f, policy, visited);
      ++visits;
    }
    ASSERT_EQ(verdictText(judgeCertificates(f, policy, t)), verdictText(last))
        << "a change between " << formatUtc(visited) << " and " << formatUtc(t) << " that nextChange skipped";
  }
  // Host: 30 day steps + the expiry; CRL: 30 day steps + nextUpdate: 62 instants.
  EXPECT_EQ(visits, 62);
  EXPECT_FALSE(last.nextChange && *last.nextChange < kNow + 40 * kDay);
}

TEST(CertNextChange, NothingTimedNoInstant) {
  CertFacts f = good();
  f.hostCert.reset();
  f.caCerts.clear();
  EXPECT_FALSE(judgeCertificates(f, CertPolicy{}, kNow).nextChange.has_value());
}

}  // namespace
}  // namespace ipopsec::test
