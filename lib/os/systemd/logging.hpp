#pragma once
// Logging: the default spdlog logger, to journald (with our own structured fields) or to
// stderr with a concise pattern.

#include <spdlog/common.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "core/status/events.hpp"

namespace ipopsec {

// Thrown by setupLogging for a level name it does not know.
class LoggingError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Structured context of a log event. Operators filter on it, e.g.
// `journalctl -u ipop-ipsecd IPOPSEC_RANGE=172.31.0.0/16`. Empty fields are left out.
struct LogFields {
  std::string interface;  // IPOPSEC_INTERFACE, e.g. "ipop"
  std::string range;      // IPOPSEC_RANGE, e.g. "172.31.0.0/16"
  std::string unit;       // IPOPSEC_UNIT, e.g. "racoon.service"
  std::string action;     // IPOPSEC_ACTION, e.g. "install", "restart"
  std::string messageId;  // MESSAGE_ID (core/status/events.hpp decides it from the event's kind)
};
// The fields of one of the core's events: its action and MESSAGE_ID from its kind.
LogFields fieldsOf(EventKind kind, std::string interface = "", std::string range = "", std::string unit = "");

inline constexpr const char* kSyslogIdentifier = "ipop-ipsecd";

// "trace", "debug", "info", "warn" (or "warning"), "error", "critical", "off".
// Throws LoggingError naming the bad value and the accepted ones.
spdlog::level::level_enum parseLogLevel(const std::string& level);

// Replaces spdlog's default logger. journal == true: every record goes to journald
// (MESSAGE, PRIORITY, SYSLOG_IDENTIFIER=ipop-ipsecd); the daemon decides with
// runBySystemd(). Otherwise: stderr, one concise line per record.
void setupLogging(const std::string& level, bool journal);

// True when systemd runs this process as a service: it sets JOURNAL_STREAM (stdout/stderr
// connected to journald) or INVOCATION_ID (every unit), both absent in a terminal.
bool runBySystemd();

// Where journal records go: sd_journal_sendv(3), unless a test replaced it. Returns the
// previous sender.
using JournalSend = void (*)(const std::vector<std::string>& fields);
JournalSend setJournalSend(JournalSend send);

// Logs `message` with the non-empty `fields` through the default logger, respecting its
// level. Journal mode: one journal entry with IPOPSEC_INTERFACE / IPOPSEC_RANGE /
// IPOPSEC_UNIT / IPOPSEC_ACTION. Other sinks: "message interface=ipop range=..." .
void logEvent(spdlog::level::level_enum lvl, const LogFields& fields, const std::string& message);

// The pieces, exposed for tests.
// " interface=ipop range=172.31.0.0/16" (leading space per field; values with spaces,
// quotes, '=' or control characters are double-quoted with \" \\ \n \t escapes).
std::string formatFields(const LogFields& fields);
// "MESSAGE=...", "PRIORITY=6", "SYSLOG_IDENTIFIER=ipop-ipsecd", "IPOPSEC_...=..." in that
// order, then "MESSAGE_ID=..." when the event has one (LogFields::messageId).
std::vector<std::string> journalFields(spdlog::level::level_enum lvl, const LogFields& fields,
                                       const std::string& message);
// syslog priority of a spdlog level (trace/debug 7, info 6, warn 4, error 3, critical 2).
int syslogPriority(spdlog::level::level_enum lvl);

}  // namespace ipopsec
