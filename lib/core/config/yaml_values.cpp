// The Reader's typed readers (yaml_reader.hpp): a scalar read as a string, a boolean, a
// duration, a whole number in a range, one of a set of names, a path or an argv; each
// records what it expected when the value is not that.

#include "core/config/yaml_reader.hpp"

#include <algorithm>
#include <charconv>

#include "core/render/quoting.hpp"

namespace ipopsec::yaml {

static bool allDigits(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), isDigit); }

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
