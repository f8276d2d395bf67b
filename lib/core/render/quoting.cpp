#include "core/render/quoting.hpp"

#include <algorithm>

namespace ipopsec {

bool isControlChar(char c) {
  auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

bool hasControlChar(std::string_view s) { return std::any_of(s.begin(), s.end(), isControlChar); }

std::string unquotableReason(std::string_view s) {
  for (char c : s) {
    if (isControlChar(c)) return "contains a control character";
    if (c == '"' || c == '\\')
      return "contains '" + std::string(1, c) + "', which racoon.conf and swanctl.conf can't quote";
  }
  return "";
}

namespace {

// One word of commandLine(): as is, in single quotes, or (with a control character, which
// must not break a log line) in bash's $'...' with escapes.
std::string shellWord(const std::string& word) {
  const bool control = hasControlChar(word);
  if (!control && !word.empty() && word.find_first_of(" '\"\\$`;&|<>(){}*?!#~") == std::string::npos) return word;
  std::string out;
  if (!control) {
    out = "'";
    for (char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
  }
  static const char* const kHex = "0123456789abcdef";
  out = "$'";
  for (char c : word) {
    auto u = static_cast<unsigned char>(c);
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\\' || c == '\'') out += std::string("\\") + c;
    else if (isControlChar(c)) out += std::string("\\x") + kHex[u >> 4] + kHex[u & 15];
    else out += c;
  }
  return out + "'";
}

}  // namespace

std::string commandLine(const std::vector<std::string>& argv) {
  std::string line;
  for (const auto& word : argv) line += (line.empty() ? "" : " ") + shellWord(word);
  if (line.size() > kMaxCommandShown) {
    std::size_t cut = kMaxCommandShown - 3;
    // Not inside a UTF-8 sequence: back to the first byte of the character cut.
    while (cut > 0 && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80) --cut;
    line = line.substr(0, cut) + "...";
  }
  return line;
}

}  // namespace ipopsec
