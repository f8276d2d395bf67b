// The one-line details SystemdUnit reports (unitdetail::*), as pure functions: the
// text an operator reads in the journal and `status` when the IKE unit can't be restarted.

#include <gtest/gtest.h>

#include <string>

#include "os/systemd/systemd_unit.hpp"

namespace ipopsec {
namespace {

bool endsWith(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

TEST(UnitManagerDetail, NotInstalledRacoonGetsTheDebianHint) {
  EXPECT_EQ(unitdetail::notInstalled("racoon.service"),
            "racoon.service is not installed (no such unit); racoon is not packaged in Debian: use "
            "`ike.backend: strongswan`");
}

TEST(UnitManagerDetail, NotInstalledOtherUnitNamesItWithoutTheHint) {
  EXPECT_EQ(unitdetail::notInstalled("strongswan.service"), "strongswan.service is not installed (no such unit)");
  EXPECT_EQ(unitdetail::notInstalled("racoon-custom.service"), "racoon-custom.service is not installed (no such unit)");
}

TEST(UnitManagerDetail, NoSuchUnitCallFailureIsNotInstalled) {
  EXPECT_EQ(unitdetail::callFailed("racoon.service", "org.freedesktop.systemd1.NoSuchUnit",
                                   "Unit racoon.service not found."),
            unitdetail::notInstalled("racoon.service"));
  EXPECT_EQ(unitdetail::callFailed("charon.service", "org.freedesktop.systemd1.NoSuchUnit", ""),
            "charon.service is not installed (no such unit)");
}

TEST(UnitManagerDetail, MaskedUnitSaysHowToUnmask) {
  EXPECT_EQ(unitdetail::callFailed("racoon.service", "org.freedesktop.systemd1.UnitMasked", "Unit racoon.service is masked."),
            "racoon.service is masked: `systemctl unmask racoon.service` to let it be restarted");
}

TEST(UnitManagerDetail, OtherCallFailureNamesTheErrorOnOneLine) {
  EXPECT_EQ(unitdetail::callFailed("racoon.service", "org.freedesktop.DBus.Error.AccessDenied", "Access\ndenied"),
            "RestartUnit(racoon.service) failed: org.freedesktop.DBus.Error.AccessDenied: Access denied");
  EXPECT_EQ(unitdetail::callFailed("racoon.service", "", ""), "RestartUnit(racoon.service) failed: unknown error");
}

TEST(UnitManagerDetail, DoneJobIsASuccessDetail) {
  EXPECT_EQ(unitdetail::jobFinished("racoon.service", "/org/freedesktop/systemd1/job/42", "done"),
            "restarted racoon.service (job /org/freedesktop/systemd1/job/42: done)");
}

TEST(UnitManagerDetail, DependencyResultNamesUnitResultMeaningAndJournal) {
  EXPECT_EQ(unitdetail::jobFinished("racoon.service", "/org/freedesktop/systemd1/job/42", "dependency"),
            "restart of racoon.service failed: job result 'dependency' (a unit it requires failed to start; job "
            "/org/freedesktop/systemd1/job/42); see `journalctl -u racoon.service`");
}

TEST(UnitManagerDetail, EveryNonDoneResultNamesUnitResultAndJournal) {
  const std::string job = "/org/freedesktop/systemd1/job/7";
  struct Case {
    const char* result;
    const char* meaning;
  };
  for (const Case& c : {Case{"failed", "the unit failed to (re)start"}, Case{"timeout", "the job timed out"},
                        Case{"canceled", "the job was canceled before it finished"},
                        Case{"skipped", "the job did not apply to the unit's state"},
                        Case{"invalid", "the job is not valid for the unit's state"},
                        Case{"assert", "an Assert condition of the unit failed"},
                        Case{"unsupported", "the operation or unit type is not supported on this system"},
                        Case{"collected", "the queued job was garbage-collected"},
                        Case{"once", "the unit may be started only once and already was"},
                        Case{"frozen", "the unit is frozen"}}) {
    SCOPED_TRACE(c.result);
    EXPECT_EQ(unitdetail::jobFinished("strongswan.service", job, c.result),
              "restart of strongswan.service failed: job result '" + std::string(c.result) + "' (" + c.meaning +
                  "; job " + job + "); see `journalctl -u strongswan.service`");
  }
}

TEST(UnitManagerDetail, UnknownResultStillNamesUnitResultAndJournal) {
  std::string d = unitdetail::jobFinished("racoon.service", "/j/1", "some-new\nresult");
  EXPECT_EQ(d, "restart of racoon.service failed: job result 'some-new result' (job /j/1); see `journalctl -u "
               "racoon.service`");
  EXPECT_TRUE(endsWith(d, "see `journalctl -u racoon.service`"));
}

TEST(UnitManagerDetail, UnitStateReportsNotFoundAndMaskedOverActiveState) {
  EXPECT_EQ(unitdetail::unitState("not-found", "inactive"), "not-found");
  EXPECT_EQ(unitdetail::unitState("masked", "inactive"), "masked");
  EXPECT_EQ(unitdetail::unitState("loaded", "active"), "active");
  EXPECT_EQ(unitdetail::unitState("loaded", "failed"), "failed");
  EXPECT_EQ(unitdetail::unitState("", "activating"), "activating") << "LoadState unreadable: ActiveState counts";
  EXPECT_EQ(unitdetail::unitState("", ""), "");
}

}  // namespace
}  // namespace ipopsec
