#pragma once
// The generic machinery for reading a YAML config file, in the style of ISC Kea's simple
// parsers: a mapping walked through a key->handler table that rejects unknown keys (with
// the nearest known key as a suggestion), typed readers that say what they expected, and
// every problem collected as a ConfigIssue (file:line:column, key path, message). It
// knows no key of ipop-ipsecd.yaml; the schema (config_schema.hpp) does.

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/config_issue.hpp"
#include "core/config/yaml_text.hpp"

namespace ipopsec::yaml {

// A value in the file: its node, where to point at, and its key path.
struct Item {
  YAML::Node node;
  YAML::Mark mark;     // the value's position (the key's when the value is empty)
  YAML::Mark keyMark;  // the key's position (the value's for list elements)
  std::string path;
};

// Reads one file's text: walks mappings and lists, converts scalars, and collects every
// problem (at most kMaxIssues, then one "too many problems") and warning.
class Reader {
 public:
  static constexpr std::size_t kMaxIssues = 100;
  static constexpr std::uint64_t kMaxDurationMs = 366ULL * 24 * 3600 * 1000;  // a (leap) year

  explicit Reader(std::string file) : file_(std::move(file)) {}

  const std::string& file() const { return file_; }

  // The root node of `text`, which must hold exactly one YAML document with a mapping at
  // its top (`sections` names its keys in messages); nullopt after recording why.
  std::optional<Item> root(const std::string& text, const Names& sections);

  // --- issues ---------------------------------------------------------------------
  void error(const YAML::Mark& mark, const std::string& path, std::string message);
  void error(const Item& it, std::string message) { error(it.mark, it.path, std::move(message)); }
  void warn(const std::string& path, const std::string& message) { warnings_.push_back(path + ": " + message); }
  bool failed() const { return !issues_.empty(); }
  std::vector<ConfigIssue> takeIssues() { return std::move(issues_); }
  std::vector<std::string> takeWarnings() { return std::move(warnings_); }

  // The item the file set at `path` ("ike.unit"); null when the file does not set it.
  const Item* seen(const std::string& path) const;

  // --- structure ------------------------------------------------------------------
  using Handler = std::function<void(const Item&)>;
  struct Key {
    std::string_view name;
    Handler handle;
  };
  // Walks a mapping: rejects a non-mapping, non-scalar keys, duplicate keys and unknown
  // keys (suggesting the nearest known one), and hands each known key's value to its
  // handler. An empty section (all keys commented out) sets nothing.
  void mapping(const Item& section, const std::vector<Key>& keys);
  // The elements of a list of at most `max` entries; nullopt after an error.
  std::optional<std::vector<Item>> list(const Item& it, const std::string& expected, std::size_t max);

  // --- typed readers (nullopt / unchanged `out` after recording the error) ----------
  std::optional<std::string> scalar(const Item& it, const std::string& expected);
  std::optional<std::string> nonEmpty(const Item& it, const std::string& expected);
  void boolean(const Item& it, bool& out);
  // "2s", "500ms", "1m", "1h", a bare number of seconds; > 0, at most kMaxDurationMs.
  std::optional<std::chrono::milliseconds> duration(const Item& it);
  std::optional<std::uint64_t> integer(const Item& it, std::uint64_t min, std::uint64_t max,
                                       const std::string& rangeNote = "");
  std::optional<std::string> oneOf(const Item& it, const Names& names);
  // A path or file name that goes into a rendered file as a quoted string
  // (core/render/quoting.hpp); false after an error.
  bool quotable(const Item& it, const std::string& s);
  void absolutePath(const Item& it, std::string& out);
  // The strings of an argv list; argv[0] must be absolute: commands run without a shell
  // or a PATH lookup. False after an error.
  bool argv(const std::vector<Item>& items, std::vector<std::string>& out);

 private:
  std::string file_;
  std::vector<ConfigIssue> issues_;
  std::vector<std::string> warnings_;
  std::map<std::string, Item> seen_;
};

}  // namespace ipopsec::yaml
