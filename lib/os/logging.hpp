#pragma once
// Logging: the default spdlog logger, to journald (with our own structured fields) or to
// stderr with a concise pattern.

#include <spdlog/common.h>

#include <stdexcept>
#include <string>
#include <vector>

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
  std::string action;     // IPOPSEC_ACTION, e.g. "install-policy", "restart"
};

inline constexpr const char* kSyslogIdentifier = "ipop-ipsecd";

// "trace", "debug", "info", "warn" (or "warning"), "error", "critical", "off".
// Throws LoggingError naming the bad value and the accepted ones.
spdlog::level::level_enum parseLogLevel(const std::string& level);

// Replaces spdlog's default logger. journal == true: every record goes to journald
// (MESSAGE, PRIORITY, SYSLOG_IDENTIFIER=ipop-ipsecd); the caller decides, e.g. with
// journalStreamIsStderr() or sd_booted(). Otherwise: stderr, one concise line per record.
void setupLogging(const std::string& level, bool journal);

// True when stderr is connected to journald (systemd sets JOURNAL_STREAM to the
// device:inode of the stream it gave the service).
bool journalStreamIsStderr();

// Logs `message` with the non-empty `fields` through the default logger, respecting its
// level. Journal mode: one journal entry with IPOPSEC_INTERFACE / IPOPSEC_RANGE /
// IPOPSEC_UNIT / IPOPSEC_ACTION. Other sinks: "message interface=ipop range=..." .
void logEvent(spdlog::level::level_enum lvl, const LogFields& fields, const std::string& message);

// The pieces, exposed for tests.
// " interface=ipop range=172.31.0.0/16" (leading space per field; values with spaces,
// quotes, '=' or control characters are double-quoted with \" \\ \n \t escapes).
std::string formatFields(const LogFields& fields);
// "MESSAGE=...", "PRIORITY=6", "SYSLOG_IDENTIFIER=ipop-ipsecd", "IPOPSEC_...=..." in that order.
std::vector<std::string> journalFields(spdlog::level::level_enum lvl, const LogFields& fields,
                                       const std::string& message);
// syslog priority of a spdlog level (trace/debug 7, info 6, warn 4, error 3, critical 2).
int syslogPriority(spdlog::level::level_enum lvl);

}  // namespace ipopsec
