// Logging: stderr formatting of the structured fields, the level threshold, the journal
// field list, and level parsing.

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "os/systemd/logging.hpp"

namespace ipopsec {
namespace {

// Points the default logger at a string stream with a bare "level|message" pattern.
class LoggingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    previous_ = spdlog::default_logger();
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    sink->set_pattern("%l|%v");
    auto logger = std::make_shared<spdlog::logger>("test", sink);
    logger->set_level(spdlog::level::info);
    spdlog::set_default_logger(logger);
  }
  void TearDown() override { spdlog::set_default_logger(previous_); }

  std::shared_ptr<spdlog::logger> previous_;
  std::ostringstream out_;
};

TEST_F(LoggingTest, FieldsAreAppendedAsKeyValue) {
  logEvent(spdlog::level::info, {"ipop", "172.31.0.0/16", "racoon.service", "restart", ""}, "restarting the IKE daemon");
  EXPECT_EQ(out_.str(),
            "info|restarting the IKE daemon interface=ipop range=172.31.0.0/16 unit=racoon.service action=restart\n");
}

TEST_F(LoggingTest, EmptyFieldsAreLeftOut) {
  logEvent(spdlog::level::warn, {"", "10.254.0.0/16", "", "", ""}, "range covers the underlay");
  logEvent(spdlog::level::err, {}, "no fields");
  EXPECT_EQ(out_.str(), "warning|range covers the underlay range=10.254.0.0/16\nerror|no fields\n");
}

TEST_F(LoggingTest, ThresholdIsRespected) {
  logEvent(spdlog::level::debug, {"ipop", "", "", "", ""}, "hidden");
  logEvent(spdlog::level::trace, {}, "hidden too");
  EXPECT_EQ(out_.str(), "");
  spdlog::default_logger()->set_level(spdlog::level::trace);
  logEvent(spdlog::level::debug, {"ipop", "", "", "", ""}, "shown");
  EXPECT_EQ(out_.str(), "debug|shown interface=ipop\n");
  spdlog::default_logger()->set_level(spdlog::level::off);
  logEvent(spdlog::level::critical, {}, "off means off");
  EXPECT_EQ(out_.str(), "debug|shown interface=ipop\n");
}

TEST_F(LoggingTest, BracesInTheMessageAreNotFormatDirectives) {
  logEvent(spdlog::level::info, {"", "", "", "x{}", ""}, "literal {} and {0}");
  EXPECT_EQ(out_.str(), "info|literal {} and {0} action=x{}\n");
}

TEST(LogFields, AwkwardValuesAreQuotedAndEscaped) {
  EXPECT_EQ(formatFields({"tap ipop", "", "", "", ""}), " interface=\"tap ipop\"");
  EXPECT_EQ(formatFields({"", "", "a\"b", "", ""}), " unit=\"a\\\"b\"");
  EXPECT_EQ(formatFields({"", "", "", "k=v", ""}), " action=\"k=v\"");
  EXPECT_EQ(formatFields({"", "", "", std::string("x\ny\t\x01", 5), ""}), " action=\"x\\ny\\t\\x01\"");
  EXPECT_EQ(formatFields({"", "", "", "back\\slash", ""}), " action=\"back\\\\slash\"");
  EXPECT_EQ(formatFields({}), "");
}

TEST(LogFields, JournalFieldsCarryOnlyNonEmptyOnes) {
  auto fields = journalFields(spdlog::level::warn, {"ipop", "172.31.0.0/16", "", "install-policy", ""}, "hello\nworld");
  EXPECT_EQ(fields, (std::vector<std::string>{"MESSAGE=hello\nworld", "PRIORITY=4", "SYSLOG_IDENTIFIER=ipop-ipsecd",
                                              "IPOPSEC_INTERFACE=ipop", "IPOPSEC_RANGE=172.31.0.0/16",
                                              "IPOPSEC_ACTION=install-policy"}));
  fields = journalFields(spdlog::level::info, {"", "", "racoon.service", "", ""}, "m");
  EXPECT_EQ(fields, (std::vector<std::string>{"MESSAGE=m", "PRIORITY=6", "SYSLOG_IDENTIFIER=ipop-ipsecd",
                                              "IPOPSEC_UNIT=racoon.service"}));
}

TEST(LogFields, SyslogPriorities) {
  EXPECT_EQ(syslogPriority(spdlog::level::trace), 7);
  EXPECT_EQ(syslogPriority(spdlog::level::debug), 7);
  EXPECT_EQ(syslogPriority(spdlog::level::info), 6);
  EXPECT_EQ(syslogPriority(spdlog::level::warn), 4);
  EXPECT_EQ(syslogPriority(spdlog::level::err), 3);
  EXPECT_EQ(syslogPriority(spdlog::level::critical), 2);
}

TEST(LogLevel, ParsesKnownNamesAndRejectsOthers) {
  EXPECT_EQ(parseLogLevel("trace"), spdlog::level::trace);
  EXPECT_EQ(parseLogLevel("debug"), spdlog::level::debug);
  EXPECT_EQ(parseLogLevel("info"), spdlog::level::info);
  EXPECT_EQ(parseLogLevel("warn"), spdlog::level::warn);
  EXPECT_EQ(parseLogLevel("warning"), spdlog::level::warn);
  EXPECT_EQ(parseLogLevel("error"), spdlog::level::err);
  EXPECT_EQ(parseLogLevel("off"), spdlog::level::off);
  for (const char* bad : {"", "INFO", "verbose", "err", "info ", "\xff"}) {
    try {
      parseLogLevel(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const LoggingError& e) {
      EXPECT_NE(std::string(e.what()).find("unknown log level '" + std::string(bad) + "'"), std::string::npos)
          << e.what();
    }
  }
}

TEST(SetupLogging, StderrModeSetsLevelAndRejectsBadLevel) {
  auto previous = spdlog::default_logger();
  setupLogging("warn", false);
  auto logger = spdlog::default_logger();
  EXPECT_EQ(logger->name(), "ipop-ipsecd");
  EXPECT_EQ(logger->level(), spdlog::level::warn);
  EXPECT_FALSE(logger->should_log(spdlog::level::info));
  EXPECT_THROW(setupLogging("loud", false), LoggingError);
  EXPECT_EQ(spdlog::default_logger(), logger) << "a bad level must not replace the logger";
  spdlog::set_default_logger(previous);
}

// What the journal sink sends, captured in place of sd_journal_sendv.
std::vector<std::vector<std::string>> journalRecords;
void captureJournal(const std::vector<std::string>& fields) { journalRecords.push_back(fields); }

bool hasField(const std::vector<std::string>& record, const std::string& field) {
  return std::find(record.begin(), record.end(), field) != record.end();
}

TEST(SetupLogging, JournalModeRoutesLogEventToTheJournalSink) {
  auto previous = spdlog::default_logger();
  journalRecords.clear();
  JournalSend real = setJournalSend(captureJournal);
  setupLogging("debug", true);
  EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::debug);
  logEvent(spdlog::level::warn, {"ipop", "172.31.0.0/16", "racoon.service", "install-policy", ""}, "journal test");
  spdlog::info("plain record {}", 1);
  logEvent(spdlog::level::trace, {"ipop", "", "", "", ""}, "below the level");  // filtered out
  setJournalSend(real);
  spdlog::set_default_logger(previous);

  ASSERT_EQ(journalRecords.size(), 2U) << "one entry per record at or above the level, nothing on stderr's path";
  const auto& event = journalRecords[0];
  EXPECT_TRUE(hasField(event, "MESSAGE=journal test"));
  EXPECT_TRUE(hasField(event, "PRIORITY=4"));
  EXPECT_TRUE(hasField(event, "SYSLOG_IDENTIFIER=ipop-ipsecd"));
  EXPECT_TRUE(hasField(event, "IPOPSEC_INTERFACE=ipop"));
  EXPECT_TRUE(hasField(event, "IPOPSEC_RANGE=172.31.0.0/16"));
  EXPECT_TRUE(hasField(event, "IPOPSEC_UNIT=racoon.service"));
  EXPECT_TRUE(hasField(event, "IPOPSEC_ACTION=install-policy"));
  const auto& plain = journalRecords[1];
  EXPECT_TRUE(hasField(plain, "MESSAGE=plain record 1"));
  EXPECT_TRUE(hasField(plain, "PRIORITY=6"));
  EXPECT_TRUE(std::none_of(plain.begin(), plain.end(),
                           [](const std::string& f) { return f.rfind("IPOPSEC_", 0) == 0; }))
      << "a plain record carries no event fields";
}

// The check the daemon makes (cli.cpp) to choose the journal: run by systemd.
TEST(RunBySystemd, JournalStreamOrInvocationIdMeansSystemd) {
  struct Saved {
    const char* name;
    std::optional<std::string> value;
  };
  std::vector<Saved> saved;
  for (const char* name : {"JOURNAL_STREAM", "INVOCATION_ID"}) {
    const char* v = std::getenv(name);
    saved.push_back({name, v ? std::optional<std::string>(v) : std::nullopt});
    ::unsetenv(name);
  }
  EXPECT_FALSE(runBySystemd()) << "a terminal: stderr";
  ::setenv("JOURNAL_STREAM", "8:12345", 1);
  EXPECT_TRUE(runBySystemd());
  ::unsetenv("JOURNAL_STREAM");
  ::setenv("INVOCATION_ID", "0123456789abcdef0123456789abcdef", 1);
  EXPECT_TRUE(runBySystemd()) << "a unit whose stderr is not the journal still logs to it";
  for (const auto& s : saved) {
    if (s.value)
      ::setenv(s.name, s.value->c_str(), 1);
    else
      ::unsetenv(s.name);
  }
}

}  // namespace
}  // namespace ipopsec
