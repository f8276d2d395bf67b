#include "daemon/state_file.hpp"

#include "core/policy/ownership.hpp"
#include "core/render/quoting.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>

#include <yaml-cpp/yaml.h>

namespace ipopsec {

std::string jsonString(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\t': o += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          o += buf;
        } else {
          o += static_cast<char>(c);
        }
    }
  }
  return o + "\"";
}

namespace {

template <class T, class F>
std::string list(const std::vector<T>& v, F f) {
  std::string o = "[";
  for (std::size_t i = 0; i < v.size(); ++i) o += (i ? ", " : "") + jsonString(f(v[i]));
  return o + "]";
}

// Unix seconds as RFC 3339 UTC (no detour through a nanosecond time_point, which would
// overflow beyond the year 2262).
std::string rfc3339Seconds(std::time_t tt) {
  std::tm tm{};
  if (!gmtime_r(&tt, &tm)) return "";
  char buf[64];
  if (std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) return "";
  return buf;
}

}  // namespace

std::string rfc3339(std::chrono::system_clock::time_point t) {
  return rfc3339Seconds(std::chrono::system_clock::to_time_t(t));
}

std::optional<std::chrono::system_clock::time_point> parseRfc3339(const std::string& s) {
  std::tm tm{};
  const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (!end || *end != '\0') return std::nullopt;
  std::time_t t = timegm(&tm);
  if (t == static_cast<std::time_t>(-1)) return std::nullopt;
  return std::chrono::system_clock::from_time_t(t);
}

std::string stateJson(const Config& cfg, const Reconciler& r, const std::string& ikeUnitState, const std::string& status,
                      const std::string& reloadRefused) {
  const auto& st = r.status();
  const auto& d = st.desired;
  std::vector<std::string> addrs;
  std::string o = "{\n";
  o += "  \"schema_version\": " + std::to_string(kStateSchemaVersion) + ",\n";
  o += "  \"status\": " + jsonString(status) + ",\n";
  o += "  \"healthy\": " + std::string(st.healthy() && reloadRefused.empty() ? "true" : "false") + ",\n";
  o += "  \"reload_refused\": " + jsonString(reloadRefused) + ",\n";
  o += "  \"interface\": " + jsonString(cfg.ipop.interface) + ",\n";
  o += "  \"tap_state\": " + jsonString(toString(d.tapState)) + ",\n";
  o += "  \"ipop_up\": " + std::string(d.ipopUp ? "true" : "false") + ",\n";
  o += "  \"local_address\": " + jsonString(d.localAddress ? d.localAddress->str() : "") + ",\n";
  o += "  \"ranges\": " + list(d.ranges, [](const Cidr& c) { return c.str(); }) + ",\n";
  o += "  \"ranges_held\": " + std::string(d.heldRanges ? "true" : "false") + ",\n";
  o += "  \"refused\": " + list(d.refused, [](const std::string& s) { return s; }) + ",\n";
  o += "  \"policies\": " + list(st.kernelPolicies, [](const Policy& p) { return p.str(); }) + ",\n";
  o += "  \"protected_ranges\": " + list(st.protectedRanges, [](const Cidr& c) { return c.str(); }) + ",\n";
  o += "  \"conflicts\": " + list(d.conflicts, [](const std::string& s) { return s; }) + ",\n";
  {
    // What the next start (or `flush`) adopts as owned (core/policy/ownership.hpp).
    const auto prios = PolicyOwnership::configured(cfg).toRecord(st.kernelPolicies);
    o += "  \"owned_priorities\": [";
    for (std::size_t i = 0; i < prios.size(); ++i) o += (i ? ", " : "") + std::to_string(prios[i]);
    o += "],\n";
  }
  o += "  \"policies_exact\": " + std::string(st.policiesExact ? "true" : "false") + ",\n";
  o += "  \"certificates_usable\": " + std::string(d.certsUsable ? "true" : "false") + ",\n";
  o += "  \"certificate_expiry\": " + jsonString(d.certExpiry ? rfc3339(*d.certExpiry) : "") + ",\n";
  o += "  \"certificate_problems\": " + list(d.certProblems, [](const std::string& s) { return s; }) + ",\n";
  o += "  \"certificate_warnings\": " + list(d.certWarnings, [](const std::string& s) { return s; }) + ",\n";
  o += "  \"ike_backend\": " + jsonString(cfg.ike.backend == IkeBackend::racoon ? "racoon" : "strongswan") + ",\n";
  // What restarts the IKE daemon, as the operator configured it: the unit, or with
  // ike.control: command the command (not a unit that is not used).
  o += "  \"ike_unit\": " +
       jsonString(cfg.ike.control == IkeControl::command && !cfg.ike.restartCommand.empty()
                      ? "ike.restart_command " + commandLine(cfg.ike.restartCommand)
                      : cfg.ike.unit) +
       ",\n";
  o += "  \"ike_unit_state\": " + jsonString(ikeUnitState) + ",\n";
  o += "  \"last_restart\": " + jsonString(st.lastRestart ? rfc3339(*st.lastRestart) : "") + ",\n";
  o += "  \"last_restart_result\": " + jsonString(st.lastRestartResult) + ",\n";
  o += "  \"last_action_reason\": " + jsonString(st.lastActionReason) + ",\n";
  // The IKE side of health: what keeps a peer from connecting (empty: nothing), and the
  // traps the IKE daemon must hold with those the kernel holds.
  o += "  \"ike_problems\": " + list(st.ikeProblems, [](const std::string& s) { return s; }) + ",\n";
  o += "  \"ike_traps_expected\": " + list(st.ikeTrapsExpected, [](const IkeTrap& t) { return t.str(); }) + ",\n";
  o += "  \"ike_traps_present\": " + list(st.ikeTrapsPresent, [](const IkeTrap& t) { return t.str(); }) + ",\n";
  o += "  \"restart_failures\": " + std::to_string(st.restartFailures) + ",\n";
  o += "  \"last_error\": " + jsonString(st.lastError) + ",\n";
  o += "  \"ike_inputs\": " + jsonString(r.scheduler().startedInputs().value_or("")) + ",\n";
  // The parts of ike_inputs whose change needs a restart or a reload ("" unknown), and the CRL
  // the IKE daemon runs with (null unknown; fingerprint "" = none): a daemon that adopts the
  // running IKE daemon judges the next change against them (a new CRL loaded, only newly
  // revoked serials cut) instead of restarting it.
  o += "  \"ike_restart_inputs\": " + jsonString(r.scheduler().startedRestartInputs().value_or("")) + ",\n";
  o += "  \"ike_reload_inputs\": " + jsonString(r.scheduler().startedReloadInputs().value_or("")) + ",\n";
  if (const auto& crl = r.crlRunning())
    o += "  \"ike_crl\": {\"fingerprint\": " + jsonString(crl->first) +
         ", \"revoked\": " + list(crl->second, [](const std::string& x) { return x; }) +
         ", \"loaded_at\": " + jsonString(r.crlLoadedAt() ? rfc3339(*r.crlLoadedAt()) : "") + "},\n";
  else
    o += "  \"ike_crl\": null,\n";
  o += "  \"pid\": " + std::to_string(::getpid()) + ",\n";
  o += "  \"written_at\": " + jsonString(rfc3339(std::chrono::system_clock::now())) + "\n";
  o += "}\n";
  return o;
}

std::optional<SavedState> parseState(const std::string& text, std::string* error) {
  try {
    YAML::Node n = YAML::Load(text);  // JSON is YAML
    if (!n.IsMap()) throw std::runtime_error("not an object");
    SavedState s;
    if (n["schema_version"]) {
      s.schemaVersion = n["schema_version"].as<int>();
      if (s.schemaVersion < 1 || s.schemaVersion > kStateSchemaVersion)
        throw std::runtime_error("schema_version " + std::to_string(s.schemaVersion) + " is not one this ipop-ipsecd reads (1.." +
                                 std::to_string(kStateSchemaVersion) + ")");
    }
    auto str = [&](const char* k) { return n[k] ? n[k].as<std::string>() : std::string(); };
    auto strs = [&](const char* k) {
      std::vector<std::string> v;
      if (n[k] && n[k].IsSequence())
        for (const auto& e : n[k]) v.push_back(e.as<std::string>());
      return v;
    };
    s.status = str("status");
    s.healthy = n["healthy"] && n["healthy"].as<bool>();
    s.ipopUp = n["ipop_up"] && n["ipop_up"].as<bool>();
    s.tapState = str("tap_state");
    if (!str("local_address").empty()) s.addresses.push_back(str("local_address"));
    s.ranges = strs("ranges");
    s.policies = strs("policies");
    s.refused = strs("refused");
    s.protectedRanges = strs("protected_ranges");
    s.conflicts = strs("conflicts");
    if (n["owned_priorities"] && n["owned_priorities"].IsSequence())
      for (const auto& e : n["owned_priorities"]) s.ownedPriorities.push_back(e.as<std::uint32_t>());
    s.lastError = str("last_error");
    s.reloadRefused = str("reload_refused");
    s.certificatesUsable = n["certificates_usable"] && n["certificates_usable"].as<bool>();
    s.certificateExpiry = str("certificate_expiry");
    s.certificateProblems = strs("certificate_problems");
    s.certificateWarnings = strs("certificate_warnings");
    s.lastRestart = str("last_restart");
    s.lastRestartResult = str("last_restart_result");
    s.lastActionReason = str("last_action_reason");
    s.ikeProblems = strs("ike_problems");
    s.ikeUnit = str("ike_unit");
    s.ikeUnitState = str("ike_unit_state");
    s.ikeInputs = str("ike_inputs");
    s.ikeRestartInputs = str("ike_restart_inputs");
    s.ikeReloadInputs = str("ike_reload_inputs");
    if (n["ike_crl"] && n["ike_crl"].IsMap()) {
      const YAML::Node c = n["ike_crl"];
      SavedState::Crl crl;
      crl.fingerprint = c["fingerprint"] ? c["fingerprint"].as<std::string>() : std::string();
      if (c["revoked"] && c["revoked"].IsSequence())
        for (const auto& e : c["revoked"]) crl.revoked.push_back(e.as<std::string>());
      crl.loadedAt = c["loaded_at"] ? c["loaded_at"].as<std::string>() : std::string();
      s.ikeCrl = std::move(crl);
    }
    if (n["written_at"]) {
      if (s.schemaVersion == 0) {
        // Earlier releases wrote unix seconds.
        auto secs = n["written_at"].as<long long>();
        if (secs < 0 || secs > 253402300799LL) throw std::runtime_error("written_at out of range");
        s.writtenAt = rfc3339Seconds(static_cast<std::time_t>(secs));
      } else {
        s.writtenAt = n["written_at"].as<std::string>();
      }
    }
    s.pid = n["pid"] ? n["pid"].as<int>() : 0;
    return s;
  } catch (const std::exception& e) {
    if (error) *error = e.what();
    return std::nullopt;
  }
}

}  // namespace ipopsec
