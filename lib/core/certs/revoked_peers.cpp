#include "core/certs/revoked_peers.hpp"

#include <algorithm>
#include <cctype>

namespace ipopsec {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// The text between the first pair of single or double quotes of `s` ("" when none).
std::string quoted(std::string_view s) {
  auto a = s.find_first_of("'\"");
  if (a == std::string_view::npos) return "";
  auto b = s.find(s[a], a + 1);
  if (b == std::string_view::npos) return "";
  return std::string(s.substr(a + 1, b - a - 1));
}

template <typename F>
void forEachLine(std::string_view text, F f) {
  while (!text.empty()) {
    auto nl = text.find('\n');
    f(text.substr(0, nl));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
}

}  // namespace

std::string normalizeSerial(std::string_view serial) {
  std::string hex;
  for (char c : trim(serial)) {
    if (c == ':') continue;
    if (!std::isxdigit(static_cast<unsigned char>(c))) return "";
    hex += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  if (hex.size() % 2) hex.insert(hex.begin(), '0');
  while (hex.size() > 2 && hex.compare(0, 2, "00") == 0) hex.erase(0, 2);
  return hex;
}

std::vector<SwanctlCert> parseSwanctlCerts(std::string_view listCerts) {
  std::vector<SwanctlCert> out;
  std::string subject;
  forEachLine(listCerts, [&](std::string_view line) {
    auto t = trim(line);
    if (t.rfind("subject:", 0) == 0) {
      subject = quoted(t);
    } else if (t.rfind("serial:", 0) == 0 && !subject.empty()) {
      auto s = normalizeSerial(t.substr(7));
      if (!s.empty()) out.push_back(SwanctlCert{subject, s});
      subject.clear();
    } else if (t.empty() || t.rfind("List of", 0) == 0) {
      subject.clear();  // a CRL's "serial:" (its number) has no subject before it
    }
  });
  return out;
}

std::vector<SwanctlIkeSa> parseSwanctlSas(std::string_view listSas) {
  std::vector<SwanctlIkeSa> out;
  forEachLine(listSas, [&](std::string_view line) {
    if (line.empty()) return;
    if (!std::isspace(static_cast<unsigned char>(line.front()))) {
      // "NAME: #ID, STATE, IKEv2, SPIs"
      auto colon = line.find(": #");
      if (colon == std::string_view::npos) return;
      SwanctlIkeSa sa;
      sa.name = std::string(line.substr(0, colon));
      auto rest = line.substr(colon + 3);
      auto comma = rest.find(',');
      try {
        sa.id = static_cast<unsigned>(std::stoul(std::string(rest.substr(0, comma))));
      } catch (...) {
        return;
      }
      if (comma != std::string_view::npos) {
        auto st = rest.substr(comma + 1);
        sa.state = std::string(trim(st.substr(0, st.find(','))));
      }
      out.push_back(std::move(sa));
      return;
    }
    // "  remote 'CN=172.31.0.20' @ 172.31.0.20[500]"; child SAs' lines are indented further.
    auto t = trim(line);
    if (out.empty() || t.rfind("remote ", 0) != 0 || line.rfind("  remote", 0) != 0 || line.rfind("    ", 0) == 0)
      return;
    auto& sa = out.back();
    sa.remoteId = quoted(t);
    auto at = t.rfind(" @ ");
    if (at != std::string_view::npos) {
      auto host = t.substr(at + 3);
      host = host.substr(0, host.find('['));
      sa.remoteHost = std::string(trim(host));
    }
  });
  return out;
}

std::vector<PeerCut> revokedPeerSas(const std::vector<SwanctlCert>& certs, const std::vector<SwanctlIkeSa>& sas,
                                    const std::vector<std::string>& serials, std::vector<std::string>* unknown) {
  std::vector<PeerCut> out;
  for (const auto& raw : serials) {
    const std::string serial = normalizeSerial(raw);
    bool known = false;
    for (const auto& c : certs) {
      if (serial.empty() || c.serial != serial) continue;
      known = true;
      for (const auto& sa : sas)
        if (sa.remoteId == c.subject &&
            std::none_of(out.begin(), out.end(), [&](const PeerCut& p) { return p.sa.id == sa.id; }))
          out.push_back(PeerCut{sa, serial});
    }
    if (!known && unknown) unknown->push_back(raw);
  }
  return out;
}

std::vector<SwanctlIkeSa> unmappedSas(const std::vector<SwanctlCert>& certs, const std::vector<SwanctlIkeSa>& sas) {
  std::vector<SwanctlIkeSa> out;
  for (const auto& sa : sas)
    if (sa.state != "CONNECTING" &&  // not authenticated yet: it checks the CRL charon holds now
        std::none_of(certs.begin(), certs.end(), [&](const SwanctlCert& c) { return c.subject == sa.remoteId; }))
      out.push_back(sa);
  return out;
}

}  // namespace ipopsec
