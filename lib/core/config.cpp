// Parsing and validation of ipop-ipsecd.yaml, in the style of ISC Kea's parsers: a
// key->handler table per section that rejects unknown keys, typed readers that say what
// they expected, and cross-checks after the walk. Every problem is collected; the caller
// gets either a fully valid Config or a ConfigError listing all of them.
//
// Defaults are never repeated here: parsing starts from Config{} (config.hpp) and only
// overwrites what the file sets. The one derived default is ike.unit for strongSwan.

#include "core/config.hpp"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <string_view>
#include <utility>

#include "core/render_swanctl.hpp"

namespace ipopsec {

std::string ConfigIssue::str() const {
  std::string out = file;
  if (line > 0) {
    out += ':' + std::to_string(line);
    if (column > 0) out += ':' + std::to_string(column);
  }
  if (!keyPath.empty()) out += (out.empty() ? "" : ": ") + keyPath;
  out += (out.empty() ? "" : ": ") + message;
  return out;
}

namespace {

std::string summarize(const std::vector<ConfigIssue>& issues) {
  if (issues.empty()) return "invalid configuration";
  std::string out;
  for (const auto& i : issues) {
    if (!out.empty()) out += '\n';
    out += i.str();
  }
  return out;
}

}  // namespace

ConfigError::ConfigError(std::vector<ConfigIssue> issues)
    : std::runtime_error(summarize(issues)), issues_(std::move(issues)) {}

Config::Proposals legacyProposals() {
  Config::Proposals p;  // lifetimes keep the defaults of config.hpp
  p.legacy = true;
  p.phase1.encryption = "3des";
  p.phase1.hash = "sha1";
  p.phase1.dhGroup = "modp1024";
  p.phase2.encryption = {"3des"};
  p.phase2.authentication = {"hmac_sha1"};
  p.phase2.pfsGroup = "modp1024";
  p.phase2.compression = "deflate";
  return p;
}

namespace {

using Ms = std::chrono::milliseconds;
using Names = std::vector<std::string_view>;

constexpr std::size_t kMaxIssues = 100;
constexpr std::uint64_t kMaxDurationMs = 366ULL * 24 * 3600 * 1000;  // a (leap) year
constexpr std::size_t kMaxRanges = 256;
constexpr std::size_t kMaxExcludes = 1024;
constexpr std::size_t kMaxArgv = 64;
constexpr std::size_t kMaxAlgorithms = 16;

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

bool allDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), isDigit);
}

bool contains(const Names& names, std::string_view s) {
  return std::find(names.begin(), names.end(), s) != names.end();
}

// User text echoed in a message: quoted, control characters escaped, long text cut.
std::string show(std::string_view s) {
  constexpr std::size_t kMax = 64;
  std::string out = "'";
  for (std::size_t i = 0; i < s.size() && i < kMax; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > kMax) out += "...";
  return out + "'";
}

// A key as it appears in a key path: printable, bounded.
std::string keyName(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < 64; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    out += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
  }
  if (s.size() > 64) out += "...";
  return out;
}

std::string describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null: return "nothing";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Scalar: return show(n.Scalar());
    default: return "an undefined value";
  }
}

std::string quoted(const Names& names) {
  std::string out;
  for (auto n : names) {
    if (!out.empty()) out += ", ";
    out += '\'';
    out += n;
    out += '\'';
  }
  return out;
}

std::string plain(const Names& names) {
  std::string out;
  for (auto n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

std::size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0U : 1U)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// The known name closest to `word`, if it is close enough to be a plausible typo.
std::optional<std::string_view> nearest(std::string_view word, const Names& names) {
  if (word.size() > 64) return std::nullopt;
  auto w = lower(word);
  std::size_t best = std::numeric_limits<std::size_t>::max();
  std::optional<std::string_view> out;
  for (auto n : names) {
    auto d = editDistance(w, lower(n));
    if (d < best) {
      best = d;
      out = n;
    }
  }
  std::size_t limit = w.size() <= 3 ? 1 : w.size() <= 6 ? 2 : 3;
  if (out && best <= limit) return out;
  return std::nullopt;
}

std::string squash(std::string_view s) {
  std::string out;
  for (char c : lower(s))
    if (c != ' ' && c != '-' && c != '_') out += c;
  return out;
}

std::string join(const std::string& path, std::string_view name) {
  return path.empty() ? std::string(name) : path + "." + std::string(name);
}

// A value in the file: its node, where to point at, and its key path.
struct Item {
  YAML::Node node;
  YAML::Mark mark;     // the value's position (the key's when the value is empty)
  YAML::Mark keyMark;  // the key's position (the value's for list elements)
  std::string path;
};

// --- algorithm names racoon really accepts (LAB.md, racoon.conf(5)) -------------------
enum class Algo { p1Encryption, p1Hash, dhGroup, p2Encryption, p2Authentication };

struct AlgoSpec {
  std::string_view what;
  Names names;
};

const AlgoSpec& spec(Algo a) {
  static const AlgoSpec p1Enc{"a phase 1 encryption algorithm racoon accepts",
                              {"aes 128", "aes 192", "aes 256", "3des", "camellia 256"}};
  static const AlgoSpec p1Hash{"a phase 1 hash algorithm racoon accepts", {"sha1", "sha256", "sha384", "sha512"}};
  static const AlgoSpec dh{"a Diffie-Hellman group racoon accepts",
                           {"modp1536", "modp2048", "modp3072", "modp4096", "modp6144", "modp8192"}};
  static const AlgoSpec p2Enc{"a phase 2 encryption algorithm racoon accepts", {"aes 128", "aes 192", "aes 256", "3des"}};
  static const AlgoSpec p2Auth{"a phase 2 authentication algorithm racoon accepts",
                               {"hmac_sha1", "hmac_sha256", "hmac_sha384", "hmac_sha512"}};
  switch (a) {
    case Algo::p1Encryption: return p1Enc;
    case Algo::p1Hash: return p1Hash;
    case Algo::dhGroup: return dh;
    case Algo::p2Encryption: return p2Enc;
    case Algo::p2Authentication: return p2Auth;
  }
  return p1Enc;
}

// Why a name racoon would reject is wrong, when we can tell; "" otherwise.
std::string algorithmHint(std::string_view value, Algo a) {
  const auto& names = spec(a).names;
  std::string v = lower(value);
  if (a == Algo::dhGroup) {
    if (v == "modp1024" || v == "2")
      return "modp1024 (group 2) is too weak; it is available only through proposals.legacy: true";
    if (v.rfind("ecp", 0) == 0 || v.rfind("curve", 0) == 0 || v.rfind("x25519", 0) == 0 ||
        v.rfind("x448", 0) == 0 || v.rfind("brainpool", 0) == 0 || v == "19" || v == "20" || v == "21" ||
        v == "25" || v == "26" || v == "27" || v == "28" || v == "29" || v == "30" || v == "31" || v == "32")
      return "racoon supports no elliptic-curve groups";
    static const std::map<std::string, std::string_view> byNumber{
        {"5", "modp1536"}, {"14", "modp2048"}, {"15", "modp3072"},
        {"16", "modp4096"}, {"17", "modp6144"}, {"18", "modp8192"}};
    if (auto it = byNumber.find(v); it != byNumber.end())
      return "write the group's name: group " + v + " is '" + std::string(it->second) + "'";
  }
  if (v.find("gcm") != std::string::npos || v.find("ccm") != std::string::npos ||
      v.find("chacha") != std::string::npos || v.find("poly1305") != std::string::npos)
    return "racoon has no AEAD ciphers (AES-GCM, AES-CCM, ChaCha20-Poly1305)";
  if (a == Algo::p2Authentication && (v == "sha1" || v == "sha256" || v == "sha384" || v == "sha512"))
    return "phase 2 uses racoon's HMAC names: use 'hmac_" + v + "'";
  if (a == Algo::p1Hash && v.rfind("hmac_", 0) == 0 && contains(names, std::string_view(v).substr(5)))
    return "phase 1 hash names have no hmac_ prefix: use '" + v.substr(5) + "'";
  auto sq = squash(v);
  for (auto n : names)
    if (squash(n) == sq) return "did you mean '" + std::string(n) + "'?";
  if (a == Algo::p1Encryption || a == Algo::p2Encryption) {
    if (v == "aes") return "name the key length: 'aes 128', 'aes 192' or 'aes 256'";
    if (v.rfind("aes", 0) == 0) return "AES key lengths are 128, 192 and 256";
    if (v == "des") return "single DES is broken and racoon's DES is not offered";
  }
  if (auto n = nearest(v, names)) return "did you mean '" + std::string(*n) + "'?";
  return "";
}

// Why `s` is not a plausible systemd service unit name; "" if it is.
std::string unitNameProblem(std::string_view s) {
  constexpr std::string_view suffix = ".service";
  if (s.size() < suffix.size() || s.substr(s.size() - suffix.size()) != suffix)
    return show(s) + " must name a service unit, ending in .service (e.g. racoon.service)";
  if (s.size() > 255) return "is longer than 255 characters, the limit for a systemd unit name";
  auto prefix = s.substr(0, s.size() - suffix.size());
  if (prefix.empty()) return show(s) + " has no name before .service";
  for (char c : prefix) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || isDigit(c) || c == ':' || c == '-' ||
              c == '_' || c == '.' || c == '\\' || c == '@';
    if (!ok) return show(s) + " contains " + show(std::string_view(&c, 1)) + ", which systemd does not allow in unit names";
  }
  auto at = prefix.find('@');
  if (at != std::string_view::npos) {
    if (at == 0) return show(s) + " is not a valid unit name: nothing before '@'";
    if (prefix.find('@', at + 1) != std::string_view::npos) return show(s) + " is not a valid unit name: more than one '@'";
    if (at + 1 == prefix.size())
      return show(s) + " is a template; name an instance, like " + std::string(prefix) + "tap" + std::string(suffix);
  }
  return "";
}

// Why `s` is not a usable Linux interface name (net/core/dev.c: dev_valid_name); "" if it is.
std::string interfaceNameProblem(std::string_view s) {
  if (s.empty()) return "must not be empty";
  if (s.size() > 15)
    return show(s) + " is " + std::to_string(s.size()) + " characters long; Linux interface names have at most 15";
  if (s == "." || s == "..") return show(s) + " is not a valid interface name";
  for (char c : s) {
    if (isSpace(c)) return show(s) + " contains whitespace, which Linux does not allow in interface names";
    if (c == '/' || c == ':')
      return show(s) + " contains '" + std::string(1, c) + "', which Linux does not allow in interface names";
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      return show(s) + " contains a control character";
  }
  return "";
}

// Counts the documents of a YAML stream, with their start marks. Not YAML::LoadAll:
// yaml-cpp 0.7's LoadAll loops forever, allocating, on a stream that starts with a token no
// node can start with (",", found by tests/fuzz; upstream yaml-cpp #1040, fixed by #1319).
// Here a document that starts where the previous one started ends the walk.
class DocumentMarks final : public YAML::EventHandler {
 public:
  // The mark of each document's root node (or of its start when it has none).
  static std::vector<YAML::Mark> of(const std::string& text) {
    std::stringstream in(text);
    YAML::Parser parser(in);
    DocumentMarks h;
    while (h.starts_.size() < 1000 && parser.HandleNextDocument(h))
      if (h.starts_.size() > 1 && h.starts_.back().pos <= h.starts_[h.starts_.size() - 2].pos) {
        h.starts_.pop_back();
        h.roots_.pop_back();
        break;
      }
    return h.roots_;
  }
  void OnDocumentStart(const YAML::Mark& mark) override {
    starts_.push_back(mark);
    roots_.push_back(mark);
    rootSeen_ = false;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& m, YAML::anchor_t) override { node(m); }
  void OnAlias(const YAML::Mark& m, YAML::anchor_t) override { node(m); }
  void OnScalar(const YAML::Mark& m, const std::string&, YAML::anchor_t, const std::string&) override { node(m); }
  void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    node(m);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    node(m);
  }
  void OnMapEnd() override {}

 private:
  void node(const YAML::Mark& m) {
    if (!rootSeen_ && !roots_.empty()) roots_.back() = m;
    rootSeen_ = true;
  }
  std::vector<YAML::Mark> starts_, roots_;
  bool rootSeen_ = false;
};

class ConfigParser {
 public:
  explicit ConfigParser(const std::string& file) : file_(file) { cfg_.sourceFile = file; }

  Config parse(const std::string& text) {
    std::vector<YAML::Node> docs;
    std::vector<YAML::Mark> starts;
    try {
      starts = DocumentMarks::of(text);  // throws on a syntax error, like Load would
      if (!starts.empty()) docs.push_back(YAML::Load(text));
    } catch (const YAML::ParserException& e) {
      error(e.mark, "", "YAML syntax error: " + e.msg);
      return finish();
    } catch (const YAML::Exception& e) {
      error(e.mark, "", "cannot read the YAML: " + e.msg);
      return finish();
    }
    const Names sections{"ipop", "protect", "ike", "racoon", "strongswan", "certificates", "proposals", "xfrm", "daemon"};
    if (docs.empty() || docs[0].IsNull()) {
      error(YAML::Mark::null_mark(), "",
            "the file is empty; expected a mapping with the sections " + plain(sections));
      return finish();
    }
    if (starts.size() > 1)
      error(starts[1], "",
            "the file holds " + std::to_string(starts.size()) + " YAML documents ('---'); expected exactly one");
    const YAML::Node& root = docs[0];
    if (!root.IsMap()) {
      error(root.Mark(), "",
            "the top level must be a mapping of sections (" + plain(sections) + "), got " + describe(root));
      return finish();
    }
    try {
      Item top{root, root.Mark(), root.Mark(), ""};
      mapping(top, {
                       {"ipop", [this](const Item& i) { ipop(i); }},
                       {"protect", [this](const Item& i) { protect(i); }},
                       {"ike", [this](const Item& i) { ike(i); }},
                       {"racoon", [this](const Item& i) { racoon(i); }},
                       {"strongswan", [this](const Item& i) { strongswan(i); }},
                       {"proposals", [this](const Item& i) { proposals(i); }},
                       {"xfrm", [this](const Item& i) { xfrm(i); }},
                       {"daemon", [this](const Item& i) { daemon(i); }},
                       {"certificates", [this](const Item& i) { certificates(i); }},
                   });
      crossChecks();
    } catch (const YAML::Exception& e) {
      // Not expected: every reader checks types first. Still a clear error, never a crash.
      error(e.mark, "", std::string("cannot read the YAML: ") + e.what());
    }
    return finish();
  }

 private:
  using Handler = std::function<void(const Item&)>;
  struct Key {
    std::string_view name;
    Handler handle;
  };

  // --- issues -----------------------------------------------------------------------
  void error(const YAML::Mark& mark, const std::string& path, std::string message) {
    if (issues_.size() > kMaxIssues) return;
    ConfigIssue issue;
    issue.file = file_;
    if (mark.line >= 0) {
      issue.line = mark.line + 1;
      issue.column = mark.column >= 0 ? mark.column + 1 : 0;
    }
    issue.keyPath = path;
    issue.message = std::move(message);
    if (issues_.size() == kMaxIssues) {
      issue.keyPath.clear();
      issue.message = "too many problems; stopped after " + std::to_string(kMaxIssues);
    }
    issues_.push_back(std::move(issue));
  }
  void error(const Item& it, std::string message) { error(it.mark, it.path, std::move(message)); }
  void warn(const std::string& path, const std::string& message) { cfg_.warnings.push_back(path + ": " + message); }

  Config finish() {
    if (!issues_.empty()) throw ConfigError(std::move(issues_));
    return std::move(cfg_);
  }

  const Item* seen(const std::string& path) const {
    auto it = seen_.find(path);
    return it == seen_.end() ? nullptr : &it->second;
  }

  // --- structure --------------------------------------------------------------------
  // Walks a mapping: rejects a non-mapping, non-scalar keys, duplicate keys and unknown
  // keys (suggesting the nearest known one), and hands each known key's value to its
  // handler. An empty section (all keys commented out) keeps every default.
  void mapping(const Item& section, const std::vector<Key>& keys) {
    if (section.node.IsNull()) return;
    Names names;
    for (const auto& k : keys) names.push_back(k.name);
    if (!section.node.IsMap()) {
      error(section, "expected a mapping with the keys " + plain(names) + ", got " + describe(section.node));
      return;
    }
    std::map<std::string, int> firstLine;
    for (const auto& kv : section.node) {
      const YAML::Node& key = kv.first;
      const YAML::Node& value = kv.second;
      if (!key.IsScalar()) {
        error(key.Mark(), section.path, "keys must be plain names, got " + describe(key));
        continue;
      }
      const std::string& name = key.Scalar();
      std::string path = join(section.path, keyName(name));
      auto [first, fresh] = firstLine.emplace(name, key.Mark().line + 1);
      if (!fresh) {
        error(key.Mark(), path, "duplicate key; first set on line " + std::to_string(first->second));
        continue;
      }
      auto known = std::find_if(keys.begin(), keys.end(), [&](const Key& k) { return k.name == name; });
      if (known == keys.end()) {
        std::string msg = "unknown key";
        if (auto s = nearest(name, names))
          msg += "; did you mean '" + std::string(*s) + "'?";
        else
          msg += "; known keys here: " + plain(names);
        error(key.Mark(), path, msg);
        continue;
      }
      Item item{value, value.IsNull() ? key.Mark() : value.Mark(), key.Mark(), path};
      seen_[path] = item;
      known->handle(item);
    }
  }

  std::optional<std::vector<Item>> list(const Item& it, const std::string& expected, std::size_t max) {
    if (!it.node.IsSequence()) {
      error(it, "expected " + expected + ", got " + describe(it.node));
      return std::nullopt;
    }
    if (it.node.size() > max) {
      error(it, "has " + std::to_string(it.node.size()) + " entries; at most " + std::to_string(max) + " are allowed");
      return std::nullopt;
    }
    std::vector<Item> out;
    std::size_t i = 0;
    for (const auto& e : it.node) {
      YAML::Mark m = e.Mark();
      if (m.line < 0) m = it.mark;
      out.push_back(Item{e, m, m, it.path + "[" + std::to_string(i) + "]"});
      ++i;
    }
    return out;
  }

  // --- typed readers ----------------------------------------------------------------
  std::optional<std::string> scalar(const Item& it, const std::string& expected) {
    if (it.node.IsScalar()) return it.node.Scalar();
    error(it, "expected " + expected + ", got " + describe(it.node));
    return std::nullopt;
  }

  std::optional<std::string> nonEmpty(const Item& it, const std::string& expected) {
    auto s = scalar(it, expected);
    if (s && s->empty()) {
      error(it, "must not be empty");
      return std::nullopt;
    }
    return s;
  }

  void boolean(const Item& it, bool& out) {
    bool b = false;
    if (it.node.IsScalar() && YAML::convert<bool>::decode(it.node, b)) {
      out = b;
      return;
    }
    error(it, "expected true/false, got " + describe(it.node));
  }

  std::optional<Ms> duration(const Item& it) {
    const std::string expected = "expected a duration like 2s or 500ms (units ms, s, m, h; a bare number is seconds)";
    if (!it.node.IsScalar()) {
      error(it, expected + ", got " + describe(it.node));
      return std::nullopt;
    }
    std::string_view s = it.node.Scalar();
    bool negative = !s.empty() && s[0] == '-';
    std::string_view rest = negative ? s.substr(1) : s;
    std::size_t n = 0;
    while (n < rest.size() && isDigit(rest[n])) ++n;
    auto number = rest.substr(0, n);
    auto unit = rest.substr(n);
    std::uint64_t scale = 0;
    if (unit.empty() || unit == "s") scale = 1000;
    else if (unit == "ms") scale = 1;
    else if (unit == "m") scale = 60 * 1000;
    else if (unit == "h") scale = 3600 * 1000;
    std::uint64_t value = 0;
    if (number.empty() || scale == 0 || number.size() > 12 ||
        std::from_chars(number.data(), number.data() + number.size(), value).ec != std::errc()) {
      error(it, expected + ", got " + show(s));
      return std::nullopt;
    }
    if (negative || value == 0) {
      error(it, "must be greater than zero, got " + show(s));
      return std::nullopt;
    }
    std::uint64_t ms = value * scale;
    if (ms > kMaxDurationMs) {
      error(it, show(s) + " is too long; at most " + std::to_string(kMaxDurationMs / 3600000) + "h");
      return std::nullopt;
    }
    return Ms(ms);
  }

  // A lifetime: a duration in whole seconds (racoon's unit).
  void lifetime(const Item& it, std::chrono::seconds& out) {
    auto d = duration(it);
    if (!d) return;
    if (d->count() % 1000 != 0) {
      error(it, show(it.node.Scalar()) + " is not a whole number of seconds; racoon counts lifetimes in seconds");
      return;
    }
    out = std::chrono::duration_cast<std::chrono::seconds>(*d);
  }

  std::optional<std::uint64_t> integer(const Item& it, std::uint64_t min, std::uint64_t max,
                                       const std::string& rangeNote = "") {
    std::string expected = "expected a whole number from " + std::to_string(min) + " to " + std::to_string(max);
    if (!it.node.IsScalar()) {
      error(it, expected + ", got " + describe(it.node));
      return std::nullopt;
    }
    const std::string& s = it.node.Scalar();
    std::uint64_t v = 0;
    if (!allDigits(s) || s.size() > 19 || std::from_chars(s.data(), s.data() + s.size(), v).ec != std::errc()) {
      error(it, expected + ", got " + show(s));
      return std::nullopt;
    }
    if (v < min || v > max) {
      error(it, s + " is out of range " + std::to_string(min) + ".." + std::to_string(max) + rangeNote);
      return std::nullopt;
    }
    return v;
  }

  std::optional<std::string> oneOf(const Item& it, const Names& names) {
    auto s = scalar(it, "one of " + quoted(names));
    if (!s) return std::nullopt;
    if (contains(names, *s)) return s;
    std::string msg = show(*s) + " is not one of " + quoted(names);
    if (auto n = nearest(*s, names)) msg += "; did you mean '" + std::string(*n) + "'?";
    error(it, msg);
    return std::nullopt;
  }

  // Paths and file names go into the rendered files as quoted strings (racoon.conf,
  // swanctl.conf): refuse what those can't hold rather than fail at render time.
  bool quotable(const Item& it, const std::string& s) {
    for (char c : s) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
        error(it, show(s) + " contains a control character");
        return false;
      }
      if (c == '"' || c == '\\') {
        error(it, show(s) + " contains '" + std::string(1, c) + "', which racoon.conf and swanctl.conf can't quote");
        return false;
      }
    }
    return true;
  }

  void absolutePath(const Item& it, std::string& out) {
    auto s = nonEmpty(it, "an absolute path");
    if (!s) return;
    if ((*s)[0] != '/') {
      error(it, "must be an absolute path, got " + show(*s));
      return;
    }
    if (s->find('\0') != std::string::npos) {
      error(it, "contains a NUL character");
      return;
    }
    if (!quotable(it, *s)) return;
    out = *s;
  }

  // ca_cert, host_cert, host_key: a file name inside racoon.certificate_dir, or an absolute path.
  void certFile(const Item& it, std::string& out) {
    auto s = nonEmpty(it, "a file name or an absolute path");
    if (!s) return;
    if (*s == "." || *s == ".." || s->back() == '/' || s->find('\0') != std::string::npos ||
        ((*s)[0] != '/' && s->find('/') != std::string::npos)) {
      error(it, show(*s) + " must be a file name inside racoon.certificate_dir (no '/') or an absolute path to a file");
      return;
    }
    if (!quotable(it, *s)) return;
    out = *s;
  }

  std::optional<std::string> algorithm(const Item& it, Algo a) {
    const auto& sp = spec(a);
    if (!it.node.IsScalar()) {
      error(it, "expected an algorithm name, got " + describe(it.node) + "; accepted: " + quoted(sp.names));
      return std::nullopt;
    }
    auto s = std::optional<std::string>(it.node.Scalar());
    if (contains(sp.names, *s)) {
      if (*s == "3des" || *s == "sha1" || *s == "hmac_sha1")
        warn(it.path, "'" + *s + "' is weak; accepted for older peers, but prefer " +
                          (*s == "3des" ? "'aes 256'" : *s == "sha1" ? "'sha256'" : "'hmac_sha256'"));
      return s;
    }
    auto hint = algorithmHint(*s, a);
    error(it, show(*s) + " is not " + std::string(sp.what) + (hint.empty() ? "" : ": " + hint) +
                  "; accepted: " + quoted(sp.names));
    return std::nullopt;
  }

  void algorithmList(const Item& it, Algo a, std::vector<std::string>& out) {
    std::vector<Item> items;
    if (it.node.IsScalar()) {
      items.push_back(it);
    } else {
      auto l = list(it, "an algorithm name or a list of them", kMaxAlgorithms);
      if (!l) return;
      items = std::move(*l);
    }
    if (items.empty()) {
      error(it, "must list at least one algorithm; accepted: " + quoted(spec(a).names));
      return;
    }
    std::vector<std::string> result;
    bool ok = true;
    for (const auto& e : items) {
      auto name = algorithm(e, a);
      if (!name) {
        ok = false;
        continue;
      }
      if (std::find(result.begin(), result.end(), *name) != result.end()) {
        error(e, show(*name) + " is listed twice");
        ok = false;
        continue;
      }
      result.push_back(*name);
    }
    if (ok) out = std::move(result);
  }

  // --- sections ---------------------------------------------------------------------
  void ipop(const Item& section) {
    if (section.node.IsScalar()) {
      error(section, "expected a mapping with the key interface, got " + describe(section.node) +
                         "; write 'ipop: { interface: " + keyName(section.node.Scalar()) + " }'");
      return;
    }
    mapping(section, {{"interface", [this](const Item& it) {
                         if (!it.node.IsScalar() && !it.node.IsNull()) {
                           error(it, "expected an interface name, got " + describe(it.node));
                           return;
                         }
                         std::string name = it.node.IsScalar() ? it.node.Scalar() : "";
                         if (auto why = interfaceNameProblem(name); !why.empty())
                           error(it, why);
                         else
                           cfg_.ipop.interface = name;
                       }}});
  }

  void protect(const Item& section) {
    bool rangesParsed = true;
    std::vector<std::pair<Cidr, Item>> excludes;
    mapping(section, {
                         {"ranges", [&](const Item& it) { rangesParsed = ranges(it); }},
                         {"ipv6", [&](const Item& it) { boolean(it, cfg_.protect.ipv6); }},
                         {"exclude", [&](const Item& it) { exclude(it, excludes); }},
                         {"level",
                          [&](const Item& it) {
                            if (auto v = oneOf(it, {"require", "use"}))
                              cfg_.protect.level = *v == "require" ? PolicyLevel::require : PolicyLevel::use;
                          }},
                         {"forward", [&](const Item& it) { boolean(it, cfg_.protect.forward); }},
                         {"allow_underlay_overlap",
                          [&](const Item& it) { boolean(it, cfg_.protect.allowUnderlayOverlap); }},
                     });
    // With explicit ranges every exclusion must lie inside one of them (with auto the
    // tap's range is known only at run time). Skipped when a range didn't parse, so one
    // typo doesn't cascade into a wrong complaint about every exclusion.
    if (!cfg_.protect.autoRanges && rangesParsed && !cfg_.protect.ranges.empty()) {
      for (const auto& entry : excludes) {
        // Not a structured binding: clang 14 (the fuzz build) can't capture those in a lambda.
        const Cidr& c = entry.first;
        const Item& it = entry.second;
        bool inside = std::any_of(cfg_.protect.ranges.begin(), cfg_.protect.ranges.end(),
                                  [&](const Cidr& r) { return r.contains(c); });
        if (!inside) {
          std::string rs;
          for (const auto& r : cfg_.protect.ranges) rs += (rs.empty() ? "" : ", ") + r.str();
          error(it, show(it.node.Scalar()) + " is not inside any protected range (" + rs + ")");
        } else if (std::find(cfg_.protect.ranges.begin(), cfg_.protect.ranges.end(), c) != cfg_.protect.ranges.end()) {
          // Its bypass policy would have exactly the selector of the range's protect policy:
          // either the kernel refuses one of the two, or the bypass wins and nothing of the
          // range is protected.
          error(it, show(it.node.Scalar()) + " is the whole protected range " + c.str() +
                        ": its bypass policy would collide with the range's protect policy and leave nothing of "
                        "it protected; remove the range instead, or exclude only hosts or parts of it");
        }
      }
    }
    if (!cfg_.protect.autoRanges && cfg_.protect.ipv6 && seen("protect.ipv6"))
      warn("protect.ipv6", "has an effect only with ranges: auto; explicit IPv6 ranges are protected as listed");
  }

  // Returns false when some entry could not be parsed at all.
  // Cidr::parse on text no CIDR could be (the longest, an IPv6 address with an embedded
  // IPv4 tail and a prefix, is under 50 characters); keeps messages short.
  static std::optional<Cidr> parseCidr(const std::string& s, std::string& why) {
    if (s.size() > 64) {
      why = "too long for an address";
      return std::nullopt;
    }
    return Cidr::parse(s, &why);
  }

  bool ranges(const Item& it) {
    const std::string expected = "a list of CIDRs or 'auto'";
    if (it.node.IsScalar()) {
      const std::string& s = it.node.Scalar();
      if (s == "auto") {
        cfg_.protect.autoRanges = true;
        cfg_.protect.ranges.clear();
        return true;
      }
      std::string msg = "expected " + expected + ", got " + show(s);
      if (lower(s) == "auto")
        msg += "; did you mean 'auto'?";
      else if (Cidr::parse(s))
        msg += "; write [" + s + "] for a single range";
      error(it, msg);
      return false;
    }
    auto items = list(it, expected, kMaxRanges);
    if (!items) return false;
    if (items->empty()) {
      error(it, "must not be empty: list at least one range, or write 'auto' to protect the tap's own range");
      return false;
    }
    bool parsed = true;
    std::vector<std::pair<Cidr, std::string>> accepted;
    for (const auto& e : *items) {
      auto s = scalar(e, "a CIDR like 172.31.0.0/16");
      if (!s) {
        parsed = false;
        continue;
      }
      std::string why;
      auto c = parseCidr(*s, why);
      if (!c) {
        error(e, show(*s) + " is not a valid CIDR: " + why);
        parsed = false;
        continue;
      }
      if (s->find('/') == std::string::npos) {
        error(e, show(*s) + " is a single address; a protected range needs a prefix length, like 172.31.0.0/16");
        parsed = false;
        continue;
      }
      if (c->hostBitsSet()) {
        error(e, show(*s) + " has host bits set; did you mean " + c->network().str() + "?");
        c = c->network();
      }
      auto clash = std::find_if(accepted.begin(), accepted.end(),
                                [&](const auto& prev) { return prev.first.overlaps(*c); });
      if (clash != accepted.end())
        error(e, show(*s) + " overlaps " + clash->second + " '" + clash->first.str() + "'");
      accepted.emplace_back(*c, e.path);
    }
    cfg_.protect.autoRanges = false;
    cfg_.protect.ranges.clear();
    for (const auto& a : accepted) cfg_.protect.ranges.push_back(a.first);
    return parsed;
  }

  void exclude(const Item& it, std::vector<std::pair<Cidr, Item>>& out) {
    const std::string expected = "a list of addresses or CIDRs";
    if (it.node.IsScalar()) {
      std::string msg = "expected " + expected + ", got " + describe(it.node);
      if (Cidr::parse(it.node.Scalar())) msg += "; write [" + it.node.Scalar() + "] for a single entry";
      error(it, msg);
      return;
    }
    auto items = list(it, expected, kMaxExcludes);
    if (!items) return;
    cfg_.protect.exclude.clear();
    for (const auto& e : *items) {
      auto s = scalar(e, "an address or a CIDR");
      if (!s) continue;
      std::string why;
      auto c = parseCidr(*s, why);
      if (!c) {
        error(e, show(*s) + " is not a valid address or CIDR: " + why);
        continue;
      }
      if (c->hostBitsSet()) {
        error(e, show(*s) + " has host bits set; did you mean " + c->network().str() + " (or " + c->address.str() +
                     " alone, to exclude one host)?");
        continue;
      }
      cfg_.protect.exclude.push_back(*c);
      out.emplace_back(*c, e);
    }
  }

  void ike(const Item& section) {
    mapping(section, {
                         {"backend",
                          [this](const Item& it) {
                            if (auto v = oneOf(it, {"racoon", "strongswan"}))
                              cfg_.ike.backend = *v == "racoon" ? IkeBackend::racoon : IkeBackend::strongswan;
                          }},
                         {"control",
                          [this](const Item& it) {
                            if (auto v = oneOf(it, {"systemd", "command"})) {
                              cfg_.ike.control = *v == "systemd" ? IkeControl::systemd : IkeControl::command;
                              controlValid_ = true;
                            } else {
                              controlValid_ = false;
                            }
                          }},
                         {"unit",
                          [this](const Item& it) {
                            auto s = nonEmpty(it, "a systemd unit name like racoon.service");
                            if (!s) return;
                            if (auto why = unitNameProblem(*s); !why.empty())
                              error(it, why);
                            else
                              cfg_.ike.unit = *s;
                          }},
                         {"restart_command", [this](const Item& it) { restartCommand(it); }},
                         {"quiet_period",
                          [this](const Item& it) {
                            if (auto d = duration(it)) cfg_.ike.quietPeriod = *d;
                          }},
                         {"min_interval",
                          [this](const Item& it) {
                            if (auto d = duration(it)) cfg_.ike.minInterval = *d;
                          }},
                         {"restart_timeout",
                          [this](const Item& it) {
                            if (auto d = duration(it)) cfg_.ike.restartTimeout = *d;
                          }},
                     });
  }

  void restartCommand(const Item& it) {
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
      error(it, "expected a list of strings (the command's argv), got " + describe(it.node) + "; write it as [" +
                    keyName(words) + "]");
      restartCommandValid_ = false;
      return;
    }
    auto items = list(it, "a list of strings (the command's argv)", kMaxArgv);
    if (!items) {
      restartCommandValid_ = false;
      return;
    }
    std::vector<std::string> argv;
    bool ok = argvOf(*items, argv);
    restartCommandValid_ = ok;
    if (ok) cfg_.ike.restartCommand = std::move(argv);
  }

  // The strings of an argv list (ike.restart_command, strongswan.load_command); argv[0]
  // must be absolute: commands run without a shell or a PATH lookup. False after an error.
  template <class Items>
  bool argvOf(const Items& items, std::vector<std::string>& argv) {
    bool ok = true;
    for (const auto& e : items) {
      auto s = nonEmpty(e, "a string");
      if (!s) {
        ok = false;
        continue;
      }
      if (argv.empty() && (*s)[0] != '/') {
        error(e, show(*s) + " must be an absolute path: the command runs without a shell or a PATH lookup");
        ok = false;
      }
      argv.push_back(*s);
    }
    return ok;
  }

  void strongswan(const Item& section) {
    mapping(section, {
                         {"swanctl_dir", [this](const Item& it) { absolutePath(it, cfg_.strongswan.swanctlDir); }},
                         {"config", [this](const Item& it) { absolutePath(it, cfg_.strongswan.config); }},
                         {"load_command", [this](const Item& it) { loadCommand(it); }},
                         {"dpd_delay",
                          [this](const Item& it) {
                            if (auto v = integer(it, 0, 3600, " (seconds; 0 disables dead peer detection)"))
                              cfg_.strongswan.dpdDelay = static_cast<int>(*v);
                          }},
                     });
  }

  // strongswan.load_command: an argv list like ike.restart_command, never empty.
  void loadCommand(const Item& it) {
    if (it.node.IsScalar()) {
      error(it, "expected a list of strings (the command's argv), got " + describe(it.node) +
                    "; write it as [/usr/sbin/swanctl, --load-all, --noprompt]");
      return;
    }
    auto items = list(it, "a list of strings (the command's argv)", kMaxArgv);
    if (!items) return;
    if (items->empty()) {
      error(it, "must not be empty: give the argv that loads the swanctl configuration, "
                "e.g. [/usr/sbin/swanctl, --load-all, --noprompt]");
      return;
    }
    std::vector<std::string> argv;
    bool ok = argvOf(*items, argv);
    if (ok) cfg_.strongswan.loadCommand = std::move(argv);
  }

  void racoon(const Item& section) {
    mapping(section, {
                         {"config", [this](const Item& it) { absolutePath(it, cfg_.racoon.config); }},
                         {"spd_file", [this](const Item& it) { absolutePath(it, cfg_.racoon.spdFile); }},
                         {"certificate_dir", [this](const Item& it) { absolutePath(it, cfg_.racoon.certificateDir); }},
                         {"ca_cert", [this](const Item& it) { certFile(it, cfg_.racoon.caCert); }},
                         {"host_cert", [this](const Item& it) { certFile(it, cfg_.racoon.hostCert); }},
                         {"host_key", [this](const Item& it) { certFile(it, cfg_.racoon.hostKey); }},
                         {"listen_on_tap", [this](const Item& it) { boolean(it, cfg_.racoon.listenOnTap); }},
                         {"dpd_delay",
                          [this](const Item& it) {
                            if (auto v = integer(it, 0, 3600, " (seconds; 0 disables dead peer detection)"))
                              cfg_.racoon.dpdDelay = static_cast<int>(*v);
                          }},
                         {"nat_traversal", [this](const Item& it) { boolean(it, cfg_.racoon.natTraversal); }},
                     });
  }

  void proposals(const Item& section) {
    mapping(section, {
                         {"legacy", [this](const Item& it) { boolean(it, cfg_.proposals.legacy); }},
                         {"phase1", [this](const Item& it) { phase1(it); }},
                         {"phase2", [this](const Item& it) { phase2(it); }},
                     });
    if (!cfg_.proposals.legacy) return;
    bool clash = false;
    for (const char* path : {"proposals.phase1", "proposals.phase2"}) {
      if (const Item* block = seen(path)) {
        error(block->keyMark, path,
              "cannot be combined with proposals.legacy: true, which selects the seed's whole proposal; "
              "remove this block or legacy: true");
        clash = true;
      }
    }
    if (clash) return;
    cfg_.proposals = legacyProposals();
    warn("proposals.legacy",
         "the seed's 3des/sha1/modp1024 proposal is weak (3DES, SHA-1 and a 1024-bit group); use it only "
         "while older peers need it, then remove legacy: true on every node to get aes 256/sha256/modp2048");
  }

  void phase1(const Item& section) {
    auto& p = cfg_.proposals.phase1;
    mapping(section, {
                         {"encryption",
                          [&](const Item& it) {
                            if (auto a = algorithm(it, Algo::p1Encryption)) p.encryption = *a;
                          }},
                         {"hash",
                          [&](const Item& it) {
                            if (auto a = algorithm(it, Algo::p1Hash)) p.hash = *a;
                          }},
                         {"dh_group",
                          [&](const Item& it) {
                            if (auto a = algorithm(it, Algo::dhGroup)) p.dhGroup = *a;
                          }},
                         {"lifetime", [&](const Item& it) { lifetime(it, p.lifetime); }},
                     });
  }

  void phase2(const Item& section) {
    auto& p = cfg_.proposals.phase2;
    mapping(section, {
                         {"encryption", [&](const Item& it) { algorithmList(it, Algo::p2Encryption, p.encryption); }},
                         {"authentication",
                          [&](const Item& it) { algorithmList(it, Algo::p2Authentication, p.authentication); }},
                         {"pfs_group",
                          [&](const Item& it) {
                            if (auto a = algorithm(it, Algo::dhGroup)) p.pfsGroup = *a;
                          }},
                         {"compression",
                          [&](const Item& it) {
                            if (auto v = oneOf(it, {"deflate", "none"})) p.compression = *v;
                          }},
                         {"lifetime", [&](const Item& it) { lifetime(it, p.lifetime); }},
                     });
  }

  void xfrm(const Item& section) {
    constexpr std::uint64_t kMax = (1ULL << 31) - 1;
    const std::string note = " (XFRM priorities must be below 2^31)";
    mapping(section, {
                         {"protect_priority",
                          [&](const Item& it) {
                            if (auto v = integer(it, 0, kMax, note))
                              cfg_.xfrm.protectPriority = static_cast<std::uint32_t>(*v);
                            else
                              priorityValid_ = false;
                          }},
                         {"bypass_priority",
                          [&](const Item& it) {
                            if (auto v = integer(it, 0, kMax, note))
                              cfg_.xfrm.bypassPriority = static_cast<std::uint32_t>(*v);
                            else
                              priorityValid_ = false;
                          }},
                     });
  }

  void certificates(const Item& section) {
    mapping(section, {
                         {"expiry_warning_days",
                          [this](const Item& it) {
                            if (auto v = integer(it, 0, 3650, " (days before the host certificate expires; 0 disables the warning)"))
                              cfg_.certificates.expiryWarningDays = static_cast<int>(*v);
                          }},
                         {"weak",
                          [this](const Item& it) {
                            if (auto v = oneOf(it, {"warn", "refuse"}))
                              cfg_.certificates.weak = *v == "warn" ? WeakCertPolicy::warn : WeakCertPolicy::refuse;
                          }},
                         {"check_key_owner", [this](const Item& it) { boolean(it, cfg_.certificates.checkKeyOwner); }},
                     });
  }

  void daemon(const Item& section) {
    mapping(section, {
                         {"state_dir", [this](const Item& it) { absolutePath(it, cfg_.daemon.stateDir); }},
                         {"remember_dir",
                          [this](const Item& it) {
                            // "" turns remembering off.
                            if (it.node.IsScalar() && it.node.Scalar().empty()) {
                              cfg_.daemon.rememberDir.clear();
                              return;
                            }
                            absolutePath(it, cfg_.daemon.rememberDir);
                          }},
                         {"metrics_file",
                          [this](const Item& it) {
                            // "" (the default) writes no metrics.
                            if (it.node.IsScalar() && it.node.Scalar().empty()) {
                              cfg_.daemon.metricsFile.clear();
                              return;
                            }
                            absolutePath(it, cfg_.daemon.metricsFile);
                          }},
                         {"log_level",
                          [this](const Item& it) {
                            if (auto v = oneOf(it, {"trace", "debug", "info", "warn", "error"}))
                              cfg_.daemon.logLevel = *v;
                          }},
                     });
  }

  // --- checks that span keys --------------------------------------------------------
  void crossChecks() {
    // ike.unit follows the backend unless set.
    if (!seen("ike.unit") && cfg_.ike.backend == IkeBackend::strongswan) cfg_.ike.unit = "strongswan.service";
    // So does the protect priority: charon's trap policies must win over the daemon's.
    if (!seen("xfrm.protect_priority") && cfg_.ike.backend == IkeBackend::strongswan)
      cfg_.xfrm.protectPriority = Config::Xfrm::kStrongswanProtectPriority;
    if (cfg_.ike.backend == IkeBackend::strongswan && priorityValid_ &&
        cfg_.xfrm.protectPriority <= Config::Xfrm::kCharonLowestPriority) {
      if (const Item* at = seen("xfrm.protect_priority"))
        error(*at, std::to_string(cfg_.xfrm.protectPriority) +
                       " would shadow charon's trap policies (priorities up to " +
                       std::to_string(Config::Xfrm::kCharonLowestPriority) +
                       "): the first packet to a peer would then raise an ACQUIRE charon ignores, and no SA "
                       "would ever come up; with backend strongswan use a value above " +
                       std::to_string(Config::Xfrm::kCharonLowestPriority) + " (default " +
                       std::to_string(Config::Xfrm::kStrongswanProtectPriority) + ")");
    }

    backendUnitMismatch();
    pathCollisions();

    const Item* control = seen("ike.control");
    const Item* command = seen("ike.restart_command");
    if (controlValid_ && restartCommandValid_) {
      if (cfg_.ike.control == IkeControl::command) {
        if (!command)
          error(control->mark, "ike.restart_command",
                "is required when ike.control is command: give the argv that restarts the IKE daemon, "
                "e.g. [/usr/sbin/service, racoon, restart]");
        else if (cfg_.ike.restartCommand.empty())
          error(*command, "must not be empty when ike.control is command");
      } else if (command) {
        error(*command, "is set but ike.control is systemd, so it would be ignored; set 'control: command' or remove it");
      }
    }

    if (priorityValid_) {
      const auto protect = cfg_.xfrm.protectPriority;
      const auto bypass = cfg_.xfrm.bypassPriority;
      const Item* at = seen("xfrm.bypass_priority");
      if (!at) at = seen("xfrm.protect_priority");
      YAML::Mark mark = at ? at->mark : YAML::Mark::null_mark();
      std::string path = at ? at->path : "xfrm";
      if (protect == bypass)
        error(mark, path,
              "bypass_priority and protect_priority are both " + std::to_string(bypass) +
                  "; they must differ (the daemon tells its policies apart by priority)");
      else if (bypass > protect)
        error(mark, path,
              "bypass_priority (" + std::to_string(bypass) + ") must be lower than protect_priority (" +
                  std::to_string(protect) + "): the lower value wins, and exclusions must win over protection");
    }
  }

  // An ike.unit that names the other backend's daemon (e.g. the example's racoon.service
  // kept after switching to strongswan): the daemon would write one daemon's files and
  // restart the other, so no SA would ever come up. A warning, repeated at every load, not
  // an error: an error would keep the daemon from starting at boot, and so from installing
  // the policies that keep the range closed; with them in, traffic is dropped, never sent
  // in the clear.
  void backendUnitMismatch() {
    const Item* at = seen("ike.unit");
    if (!at || cfg_.ike.control != IkeControl::systemd) return;
    const std::string unit = lower(cfg_.ike.unit);
    const bool racoonUnit = unit.find("racoon") != std::string::npos;
    const bool swanUnit = unit.find("strongswan") != std::string::npos || unit.find("charon") != std::string::npos;
    const bool racoon = cfg_.ike.backend == IkeBackend::racoon;
    if (racoon ? (swanUnit && !racoonUnit) : (racoonUnit && !swanUnit))
      warn(at->path, "'" + cfg_.ike.unit + "' looks like " + (racoon ? "strongSwan's" : "racoon's") +
                         " unit, but ike.backend is " + (racoon ? "racoon" : "strongswan") +
                         ": the daemon would write " + (racoon ? "racoon's" : "strongSwan's") +
                         " files and restart the other daemon, and no SA would come up (traffic of the range is "
                         "dropped); remove ike.unit to get the backend's default (" +
                         (racoon ? "racoon.service" : "strongswan.service") + ") or set the right unit");
  }

  // Every file the daemon writes must have a path of its own, and none may be a file it
  // reads: racoon.config equal to racoon.spd_file would have each replace the other; an
  // output equal to the host key, a certificate, the config file or the state file would
  // destroy it at the first reconcile. Paths are compared after lexical normalisation
  // (symlinks are not resolved: the core does not look at the filesystem).
  void pathCollisions() {
    struct Use {
      std::string path;  // normalised
      std::string what;  // "racoon.spd_file", "racoon.host_key (in racoon.certificate_dir)"
      std::string key;   // the key that sets it, for the issue's position
    };
    auto norm = [](const std::string& p) { return std::filesystem::path(p).lexically_normal().string(); };
    std::vector<Use> writes, reads;
    if (cfg_.ike.backend == IkeBackend::racoon) {
      writes.push_back({norm(cfg_.racoon.config), "racoon.config", "racoon.config"});
      writes.push_back({norm(cfg_.racoon.spdFile), "racoon.spd_file", "racoon.spd_file"});
    } else {
      writes.push_back({norm(cfg_.strongswan.config), "strongswan.config", "strongswan.config"});
      for (const char* f : {kSwanctlCaFile, kSwanctlCertFile, kSwanctlKeyFile})
        writes.push_back({norm(cfg_.strongswan.swanctlDir + "/" + f),
                          std::string("strongswan.swanctl_dir's ") + f, "strongswan.swanctl_dir"});
    }
    for (const char* f : {Config::Daemon::kStateFile, Config::Daemon::kIpopUpFile})
      writes.push_back({norm(cfg_.daemon.stateDir + "/" + f), std::string("daemon.state_dir's ") + f,
                        "daemon.state_dir"});
    if (!cfg_.daemon.metricsFile.empty())
      writes.push_back({norm(cfg_.daemon.metricsFile), "daemon.metrics_file", "daemon.metrics_file"});
    auto certFile = [&](const std::string& name, const char* key) {
      bool relative = name.front() != '/';
      reads.push_back({norm(relative ? cfg_.racoon.certificateDir + "/" + name : name),
                       std::string(key) + (relative ? " (in racoon.certificate_dir)" : ""), key});
    };
    certFile(cfg_.racoon.caCert, "racoon.ca_cert");
    certFile(cfg_.racoon.hostCert, "racoon.host_cert");
    certFile(cfg_.racoon.hostKey, "racoon.host_key");
    if (!file_.empty() && file_.front() == '/') reads.push_back({norm(file_), "the config file itself", ""});

    // Reported at the key that sets the output when the file sets it, else at the input's.
    auto report = [&](const Use& out, const Use& other, const std::string& why) {
      const Item* at = seen(out.key);
      if (!at && !other.key.empty()) at = seen(other.key);
      std::string msg = show(out.path) + " (" + out.what + ") is also " + other.what + ": " + why;
      if (at)
        error(*at, msg);
      else
        error(YAML::Mark::null_mark(), out.key, msg);
    };
    for (std::size_t i = 0; i < writes.size(); ++i)
      for (std::size_t j = i + 1; j < writes.size(); ++j)
        if (writes[i].path == writes[j].path)
          report(writes[j], writes[i], "the daemon would write both files at the same path, each replacing the other");
    for (const auto& w : writes)
      for (const auto& r : reads)
        if (w.path == r.path)
          report(w, r, "a file the daemon reads; writing there would destroy it");
  }

  std::string file_;
  Config cfg_;
  std::vector<ConfigIssue> issues_;
  std::map<std::string, Item> seen_;
  bool controlValid_ = true;
  bool restartCommandValid_ = true;
  bool priorityValid_ = true;
};

}  // namespace

Config parseConfig(const std::string& text, const std::string& name) {
  ConfigParser parser(name);
  return parser.parse(text);
}

}  // namespace ipopsec
