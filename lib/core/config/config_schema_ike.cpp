// The schema of the sections ike, racoon, strongswan, certificates and daemon
// (config_schema.hpp).

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/config/config_schema.hpp"

namespace ipopsec::schema {

using namespace yaml;

namespace {

constexpr std::size_t kMaxArgv = 64;

// Why `s` is not a plausible systemd service unit name; "" if it is.
std::string unitNameProblem(std::string_view s) {
  constexpr std::string_view suffix = ".service";
  if (s.size() < suffix.size() || s.substr(s.size() - suffix.size()) != suffix)
    return show(s) + " must name a service unit, ending in .service (e.g. racoon.service)";
  if (s.size() > 255) return "is longer than 255 characters, the limit for a systemd unit name";
  auto prefix = s.substr(0, s.size() - suffix.size());
  if (prefix.empty()) return show(s) + " has no name before .service";
  for (char c : prefix) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || isDigit(c) || c == ':' || c == '-' || c == '_' ||
              c == '.' || c == '\\' || c == '@';
    if (!ok)
      return show(s) + " contains " + show(std::string_view(&c, 1)) + ", which systemd does not allow in unit names";
  }
  auto at = prefix.find('@');
  if (at != std::string_view::npos) {
    if (at == 0) return show(s) + " is not a valid unit name: nothing before '@'";
    if (prefix.find('@', at + 1) != std::string_view::npos)
      return show(s) + " is not a valid unit name: more than one '@'";
    if (at + 1 == prefix.size())
      return show(s) + " is a template; name an instance, like " + std::string(prefix) + "tap" + std::string(suffix);
  }
  return "";
}

// ike.restart_command: an argv list (Reader::argv).
void restartCommand(Parse& p, const Item& it) {
  if (it.node.IsScalar()) {
    std::string words;
    std::string_view s = it.node.Scalar();
    std::size_t i = 0;
    while (i < s.size()) {
      while (i < s.size() && isSpace(s[i])) ++i;
      std::size_t start = i;
      while (i < s.size() && !isSpace(s[i])) ++i;
      if (i > start) words += (words.empty() ? "" : ", ") + std::string(s.substr(start, i - start));
    }
    p.r.error(it, "expected a list of strings (the command's argv), got " + describe(it.node) + "; write it as [" +
                      keyName(words) + "]");
    p.restartCommandValid = false;
    return;
  }
  auto items = p.r.list(it, "a list of strings (the command's argv)", kMaxArgv);
  if (!items) {
    p.restartCommandValid = false;
    return;
  }
  std::vector<std::string> argv;
  bool ok = p.r.argv(*items, argv);
  p.restartCommandValid = ok;
  if (ok) p.cfg.ike.restartCommand = std::move(argv);
}

// strongswan.load_command and load_creds_command: an argv list like ike.restart_command,
// never empty. `what`: what it loads; `example`: the default, as the error shows it.
void loadCommand(Parse& p, const Item& it, std::vector<std::string>& out, const char* what, const char* example) {
  if (it.node.IsScalar()) {
    p.r.error(it, "expected a list of strings (the command's argv), got " + describe(it.node) + "; write it as " +
                      example);
    return;
  }
  auto items = p.r.list(it, "a list of strings (the command's argv)", kMaxArgv);
  if (!items) return;
  if (items->empty()) {
    p.r.error(it, std::string("must not be empty: give the argv that loads ") + what + ", e.g. " + example);
    return;
  }
  std::vector<std::string> argv;
  bool ok = p.r.argv(*items, argv);
  if (ok) out = std::move(argv);
}

// strongswan.cut_command: an argv list; empty ([]) turns the cut off (a revocation restarts charon).
void cutCommand(Parse& p, const Item& it) {
  if (it.node.IsScalar()) {
    p.r.error(it, "expected a list of strings (the command's argv), got " + describe(it.node) +
                      "; write it as [/usr/sbin/ipop-ipsecd, cut-revoked], or [] to restart charon on a revocation");
    return;
  }
  auto items = p.r.list(it, "a list of strings (the command's argv)", kMaxArgv);
  if (!items) return;
  std::vector<std::string> argv;
  if (items->empty() || p.r.argv(*items, argv)) p.cfg.strongswan.cutCommand = std::move(argv);
}

// ca_cert, host_cert, host_key: a file name inside racoon.certificate_dir, or an absolute path.
void certFile(Parse& p, const Item& it, std::string& out) {
  auto s = p.r.nonEmpty(it, "a file name or an absolute path");
  if (!s) return;
  if (*s == "." || *s == ".." || s->back() == '/' || s->find('\0') != std::string::npos ||
      ((*s)[0] != '/' && s->find('/') != std::string::npos)) {
    p.r.error(it,
              show(*s) + " must be a file name inside racoon.certificate_dir (no '/') or an absolute path to a file");
    return;
  }
  if (!p.r.quotable(it, *s)) return;
  out = *s;
}

// An absolute path, or "" for "off".
void absolutePathOrOff(Parse& p, const Item& it, std::string& out) {
  if (it.node.IsScalar() && it.node.Scalar().empty()) {
    out.clear();
    return;
  }
  p.r.absolutePath(it, out);
}

}  // namespace

void ike(Parse& p, const Item& section) {
  p.r.mapping(section, {
                           {"backend",
                            [&p](const Item& it) {
                              if (auto v = p.r.oneOf(it, {"racoon", "strongswan"}))
                                p.cfg.ike.backend = *v == "racoon" ? IkeBackend::racoon : IkeBackend::strongswan;
                            }},
                           {"control",
                            [&p](const Item& it) {
                              if (auto v = p.r.oneOf(it, {"systemd", "command"})) {
                                p.cfg.ike.control = *v == "systemd" ? IkeControl::systemd : IkeControl::command;
                                p.controlValid = true;
                              } else {
                                p.controlValid = false;
                              }
                            }},
                           {"unit",
                            [&p](const Item& it) {
                              auto s = p.r.nonEmpty(it, "a systemd unit name like racoon.service");
                              if (!s) return;
                              if (auto why = unitNameProblem(*s); !why.empty())
                                p.r.error(it, why);
                              else
                                p.cfg.ike.unit = *s;
                            }},
                           {"restart_command", [&p](const Item& it) { restartCommand(p, it); }},
                           {"quiet_period",
                            [&p](const Item& it) {
                              if (auto d = p.r.duration(it)) p.cfg.ike.quietPeriod = *d;
                            }},
                           {"min_interval",
                            [&p](const Item& it) {
                              if (auto d = p.r.duration(it)) p.cfg.ike.minInterval = *d;
                            }},
                           {"restart_timeout",
                            [&p](const Item& it) {
                              if (auto d = p.r.duration(it)) p.cfg.ike.restartTimeout = *d;
                            }},
                           {"acquire_retry",
                            [&p](const Item& it) {
                              // `off` (or 0) turns it off; otherwise a duration.
                              if (it.node.IsScalar() && (it.node.Scalar() == "off" || it.node.Scalar() == "0"))
                                p.cfg.ike.acquireRetry = std::chrono::milliseconds(0);
                              else if (auto d = p.r.duration(it))
                                p.cfg.ike.acquireRetry = *d;
                            }},
                       });
}

void strongswan(Parse& p, const Item& section) {
  p.r.mapping(section, {
                           {"swanctl_dir", [&p](const Item& it) { p.r.absolutePath(it, p.cfg.strongswan.swanctlDir); }},
                           {"config", [&p](const Item& it) { p.r.absolutePath(it, p.cfg.strongswan.config); }},
                           {"load_command",
                            [&p](const Item& it) {
                              loadCommand(p, it, p.cfg.strongswan.loadCommand, "the swanctl configuration",
                                          "[/usr/sbin/swanctl, --load-all, --noprompt]");
                            }},
                           {"load_creds_command",
                            [&p](const Item& it) {
                              loadCommand(p, it, p.cfg.strongswan.loadCredsCommand, "the credentials (the CRL)",
                                          "[/usr/sbin/swanctl, --load-creds, --noprompt]");
                            }},
                           {"cut_command", [&p](const Item& it) { cutCommand(p, it); }},
                           {"dpd_delay",
                            [&p](const Item& it) {
                              if (auto v = p.r.integer(it, 0, 3600, " (seconds; 0 disables dead peer detection)"))
                                p.cfg.strongswan.dpdDelay = static_cast<int>(*v);
                            }},
                       });
}

void racoon(Parse& p, const Item& section) {
  p.r.mapping(section,
              {
                  {"config", [&p](const Item& it) { p.r.absolutePath(it, p.cfg.racoon.config); }},
                  {"spd_file", [&p](const Item& it) { p.r.absolutePath(it, p.cfg.racoon.spdFile); }},
                  {"certificate_dir", [&p](const Item& it) { p.r.absolutePath(it, p.cfg.racoon.certificateDir); }},
                  {"ca_cert", [&p](const Item& it) { certFile(p, it, p.cfg.racoon.caCert); }},
                  {"host_cert", [&p](const Item& it) { certFile(p, it, p.cfg.racoon.hostCert); }},
                  {"host_key", [&p](const Item& it) { certFile(p, it, p.cfg.racoon.hostKey); }},
                  {"crl",
                   [&p](const Item& it) {
                     if (it.node.IsScalar() && it.node.Scalar().empty())
                       p.cfg.racoon.crl.clear();  // no CRL
                     else
                       certFile(p, it, p.cfg.racoon.crl);
                   }},
                  {"listen_on_tap", [&p](const Item& it) { p.r.boolean(it, p.cfg.racoon.listenOnTap); }},
                  {"dpd_delay",
                   [&p](const Item& it) {
                     if (auto v = p.r.integer(it, 0, 3600, " (seconds; 0 disables dead peer detection)"))
                       p.cfg.racoon.dpdDelay = static_cast<int>(*v);
                   }},
                  {"nat_traversal", [&p](const Item& it) { p.r.boolean(it, p.cfg.racoon.natTraversal); }},
              });
}

void certificates(Parse& p, const Item& section) {
  p.r.mapping(section,
              {
                  {"expiry_warning_days",
                   [&p](const Item& it) {
                     if (auto v = p.r.integer(it, 0, 3650,
                                              " (days before the host certificate expires; 0 disables the warning)"))
                       p.cfg.certificates.expiryWarningDays = static_cast<int>(*v);
                   }},
                  {"weak",
                   [&p](const Item& it) {
                     if (auto v = p.r.oneOf(it, {"warn", "refuse"}))
                       p.cfg.certificates.weak = *v == "warn" ? WeakCertPolicy::warn : WeakCertPolicy::refuse;
                   }},
                  {"check_key_owner", [&p](const Item& it) { p.r.boolean(it, p.cfg.certificates.checkKeyOwner); }},
              });
}

void daemon(Parse& p, const Item& section) {
  p.r.mapping(section, {
                           {"state_dir", [&p](const Item& it) { p.r.absolutePath(it, p.cfg.daemon.stateDir); }},
                           {"remember_dir",  // "" turns remembering off
                            [&p](const Item& it) { absolutePathOrOff(p, it, p.cfg.daemon.rememberDir); }},
                           {"metrics_file",  // "" (the default) writes no metrics
                            [&p](const Item& it) { absolutePathOrOff(p, it, p.cfg.daemon.metricsFile); }},
                           {"metrics_interval",
                            [&p](const Item& it) {
                              auto d = p.r.duration(it);
                              if (d && (*d < std::chrono::seconds(1) || *d > std::chrono::seconds(60)))
                                p.r.error(it, "must be between 1s and 60s (the metrics file's timestamp is rewritten at "
                                              "least this often while nothing changes), got " +
                                                  std::to_string(d->count()) + "ms");
                              else if (d)
                                p.cfg.daemon.metricsInterval = *d;
                            }},
                           {"log_level",
                            [&p](const Item& it) {
                              if (auto v = p.r.oneOf(it, {"trace", "debug", "info", "warn", "error"}))
                                p.cfg.daemon.logLevel = *v;
                            }},
                       });
}

}  // namespace ipopsec::schema
