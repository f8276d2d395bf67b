#include "os/systemd/logging.hpp"

#define SD_JOURNAL_SUPPRESS_LOCATION  // our fields only, not this file's CODE_FILE/CODE_LINE
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string_view>

namespace ipopsec {
namespace {

constexpr const char* kStderrPattern = "%Y-%m-%d %H:%M:%S.%e %^%l%$ %v";

void sdJournalSend(const std::vector<std::string>& fields) {
  std::vector<iovec> iov;
  iov.reserve(fields.size());
  for (const auto& f : fields) iov.push_back({const_cast<char*>(f.data()), f.size()});
  // The journal is best effort: if journald is gone there is nowhere to report it.
  (void)::sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
}

std::atomic<JournalSend> journalSend{sdJournalSend};

void sendToJournal(const std::vector<std::string>& fields) { journalSend.load()(fields); }

// Sends every spdlog record to journald as MESSAGE/PRIORITY/SYSLOG_IDENTIFIER (journald
// adds the timestamp, pid and unit itself). logEvent() finds it among the default
// logger's sinks to send its structured fields through the same channel.
class JournalSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    sendToJournal(journalFields(msg.level, {}, std::string(msg.payload.data(), msg.payload.size())));
  }
  void flush_() override {}
};

bool needsQuotes(std::string_view v) {
  for (unsigned char c : v) {
    if (c <= 0x20 || c == 0x7f || c == '"' || c == '=' || c == '\\') return true;
  }
  return false;
}

void appendField(std::string& out, std::string_view key, std::string_view value) {
  if (value.empty()) return;
  out += ' ';
  out += key;
  out += '=';
  if (!needsQuotes(value)) {
    out += value;
    return;
  }
  out += '"';
  for (unsigned char c : value) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

}  // namespace

spdlog::level::level_enum parseLogLevel(const std::string& level) {
  using spdlog::level::level_enum;
  if (level == "trace") return level_enum::trace;
  if (level == "debug") return level_enum::debug;
  if (level == "info") return level_enum::info;
  if (level == "warn" || level == "warning") return level_enum::warn;
  if (level == "error") return level_enum::err;
  if (level == "critical") return level_enum::critical;
  if (level == "off") return level_enum::off;
  throw LoggingError("unknown log level '" + level + "' (expected trace, debug, info, warn, error, critical or off)");
}

int syslogPriority(spdlog::level::level_enum lvl) {
  switch (lvl) {
    case spdlog::level::trace:
    case spdlog::level::debug: return 7;  // LOG_DEBUG
    case spdlog::level::info: return 6;   // LOG_INFO
    case spdlog::level::warn: return 4;   // LOG_WARNING
    case spdlog::level::err: return 3;    // LOG_ERR
    case spdlog::level::critical: return 2;  // LOG_CRIT
    default: return 6;
  }
}

std::string formatFields(const LogFields& f) {
  std::string out;
  appendField(out, "interface", f.interface);
  appendField(out, "range", f.range);
  appendField(out, "unit", f.unit);
  appendField(out, "action", f.action);
  return out;
}

LogFields fieldsOf(EventKind kind, std::string interface, std::string range, std::string unit) {
  const EventKindInfo& k = describe(kind);
  return LogFields{std::move(interface), std::move(range), std::move(unit), k.action, k.messageId};
}

std::vector<std::string> journalFields(spdlog::level::level_enum lvl, const LogFields& f,
                                       const std::string& message) {
  // sd_journal_sendv copes with newlines and any byte in a value (it switches to the
  // binary-safe form of the native protocol).
  std::vector<std::string> out;
  out.push_back("MESSAGE=" + message);
  out.push_back("PRIORITY=" + std::to_string(syslogPriority(lvl)));
  out.push_back(std::string("SYSLOG_IDENTIFIER=") + kSyslogIdentifier);
  if (!f.interface.empty()) out.push_back("IPOPSEC_INTERFACE=" + f.interface);
  if (!f.range.empty()) out.push_back("IPOPSEC_RANGE=" + f.range);
  if (!f.unit.empty()) out.push_back("IPOPSEC_UNIT=" + f.unit);
  if (!f.action.empty()) out.push_back("IPOPSEC_ACTION=" + f.action);
  if (!f.messageId.empty()) out.push_back("MESSAGE_ID=" + f.messageId);
  return out;
}

void setupLogging(const std::string& level, bool journal) {
  auto lvl = parseLogLevel(level);
  spdlog::sink_ptr sink;
  if (journal) {
    sink = std::make_shared<JournalSink>();
  } else {
    sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    sink->set_pattern(kStderrPattern);
  }
  auto logger = std::make_shared<spdlog::logger>(kSyslogIdentifier, std::move(sink));
  logger->set_level(lvl);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
}

bool runBySystemd() { return std::getenv("JOURNAL_STREAM") != nullptr || std::getenv("INVOCATION_ID") != nullptr; }

JournalSend setJournalSend(JournalSend send) { return journalSend.exchange(send); }

void logEvent(spdlog::level::level_enum lvl, const LogFields& fields, const std::string& message) {
  auto logger = spdlog::default_logger();
  if (!logger || !logger->should_log(lvl)) return;
  for (const auto& sink : logger->sinks()) {
    if (dynamic_cast<JournalSink*>(sink.get()) != nullptr) {
      if (sink->should_log(lvl)) sendToJournal(journalFields(lvl, fields, message));
      return;
    }
  }
  logger->log(lvl, "{}{}", message, formatFields(fields));
}

}  // namespace ipopsec
