#pragma once
// The text helpers of the config reader's messages (yaml_reader.hpp): what a message
// echoes of the user's file is bounded and made printable, names are listed quoted or
// plain, and a typo is matched to the nearest known name.

#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ipopsec::yaml {

using Names = std::vector<std::string_view>;

std::string lower(std::string_view s);
bool isDigit(char c);
bool isSpace(char c);
bool contains(const Names& names, std::string_view s);
// User text echoed in a message: quoted, control characters escaped, long text cut.
std::string show(std::string_view s);
// A key as it appears in a key path: printable, bounded.
std::string keyName(std::string_view s);
std::string describe(const YAML::Node& n);  // "a list", "'text'", ...
std::string quoted(const Names& names);     // 'a', 'b'
std::string plain(const Names& names);      // a, b
// The known name closest to `word`, if it is close enough to be a plausible typo.
std::optional<std::string_view> nearest(std::string_view word, const Names& names);

}  // namespace ipopsec::yaml
