// The Reader's issues and its walk of the file's structure (yaml_reader.hpp): where each
// problem is recorded, the mapping walk through a key->handler table, and lists. The
// helpers of its messages are yaml_text.cpp, the document check yaml_document.cpp, the
// typed readers yaml_values.cpp. Knows no key of ipop-ipsecd.yaml.

#include "core/config/yaml_reader.hpp"

#include <algorithm>
#include <utility>

namespace ipopsec::yaml {
namespace {

std::string join(const std::string& path, std::string_view name) {
  return path.empty() ? std::string(name) : path + "." + std::string(name);
}

}  // namespace

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

}  // namespace ipopsec::yaml
