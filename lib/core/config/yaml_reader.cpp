// The generic YAML reading machinery (yaml_reader.hpp): message helpers, the document
// check, the mapping walk and the typed readers. Knows no key of ipop-ipsecd.yaml.

#include "core/config/yaml_reader.hpp"

#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <charconv>
#include <limits>
#include <sstream>
#include <utility>

#include "core/render/quoting.hpp"

namespace ipopsec::yaml {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

static bool allDigits(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), isDigit); }

bool contains(const Names& names, std::string_view s) {
  return std::find(names.begin(), names.end(), s) != names.end();
}

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
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Scalar:
      return show(n.Scalar());
    default:
      return "an undefined value";
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

static std::size_t editDistance(std::string_view a, std::string_view b) {
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

namespace {

std::string join(const std::string& path, std::string_view name) {
  return path.empty() ? std::string(name) : path + "." + std::string(name);
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

}  // namespace

std::optional<Item> Reader::root(const std::string& text, const Names& sections) {
  std::vector<YAML::Node> docs;
  std::vector<YAML::Mark> starts;
  try {
    starts = DocumentMarks::of(text);  // throws on a syntax error, like Load would
    if (!starts.empty()) docs.push_back(YAML::Load(text));
  } catch (const YAML::ParserException& e) {
    error(e.mark, "", "YAML syntax error: " + e.msg);
    return std::nullopt;
  } catch (const YAML::Exception& e) {
    error(e.mark, "", "cannot read the YAML: " + e.msg);
    return std::nullopt;
  }
  if (docs.empty() || docs[0].IsNull()) {
    error(YAML::Mark::null_mark(), "", "the file is empty; expected a mapping with the sections " + plain(sections));
    return std::nullopt;
  }
  if (starts.size() > 1)
    error(starts[1], "",
          "the file holds " + std::to_string(starts.size()) + " YAML documents ('---'); expected exactly one");
  const YAML::Node& root = docs[0];
  if (!root.IsMap()) {
    error(root.Mark(), "",
          "the top level must be a mapping of sections (" + plain(sections) + "), got " + describe(root));
    return std::nullopt;
  }
  return Item{root, root.Mark(), root.Mark(), ""};
}

void Reader::error(const YAML::Mark& mark, const std::string& path, std::string message) {
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

const Item* Reader::seen(const std::string& path) const {
  auto it = seen_.find(path);
  return it == seen_.end() ? nullptr : &it->second;
}

void Reader::mapping(const Item& section, const std::vector<Key>& keys) {
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

std::optional<std::vector<Item>> Reader::list(const Item& it, const std::string& expected, std::size_t max) {
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

std::optional<std::string> Reader::scalar(const Item& it, const std::string& expected) {
  if (it.node.IsScalar()) return it.node.Scalar();
  error(it, "expected " + expected + ", got " + describe(it.node));
  return std::nullopt;
}

std::optional<std::string> Reader::nonEmpty(const Item& it, const std::string& expected) {
  auto s = scalar(it, expected);
  if (s && s->empty()) {
    error(it, "must not be empty");
    return std::nullopt;
  }
  return s;
}

void Reader::boolean(const Item& it, bool& out) {
  bool b = false;
  if (it.node.IsScalar() && YAML::convert<bool>::decode(it.node, b)) {
    out = b;
    return;
  }
  error(it, "expected true/false, got " + describe(it.node));
}

std::optional<std::chrono::milliseconds> Reader::duration(const Item& it) {
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
  if (unit.empty() || unit == "s")
    scale = 1000;
  else if (unit == "ms")
    scale = 1;
  else if (unit == "m")
    scale = 60 * 1000;
  else if (unit == "h")
    scale = 3600 * 1000;
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
  return std::chrono::milliseconds(ms);
}

std::optional<std::uint64_t> Reader::integer(const Item& it, std::uint64_t min, std::uint64_t max,
                                             const std::string& rangeNote) {
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

std::optional<std::string> Reader::oneOf(const Item& it, const Names& names) {
  auto s = scalar(it, "one of " + quoted(names));
  if (!s) return std::nullopt;
  if (contains(names, *s)) return s;
  std::string msg = show(*s) + " is not one of " + quoted(names);
  if (auto n = nearest(*s, names)) msg += "; did you mean '" + std::string(*n) + "'?";
  error(it, msg);
  return std::nullopt;
}

bool Reader::quotable(const Item& it, const std::string& s) {
  auto why = unquotableReason(s);
  if (why.empty()) return true;
  error(it, show(s) + " " + why);
  return false;
}

void Reader::absolutePath(const Item& it, std::string& out) {
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

bool Reader::argv(const std::vector<Item>& items, std::vector<std::string>& out) {
  bool ok = true;
  for (const auto& e : items) {
    auto s = nonEmpty(e, "a string");
    if (!s) {
      ok = false;
      continue;
    }
    if (out.empty() && (*s)[0] != '/') {
      error(e, show(*s) +
                   " must be an absolute path: the command runs without a shell, and the daemon does not "
                   "depend on its PATH");
      ok = false;
    }
    out.push_back(*s);
  }
  return ok;
}

}  // namespace ipopsec::yaml
