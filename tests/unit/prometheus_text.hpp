#pragma once
// A line-by-line checker of Prometheus' text exposition format (0.0.4), strict where the
// daemon's metrics file is: every family has one # HELP and one # TYPE before its samples,
// a family's samples are one group, no series twice, the file ends with a newline.
// Returns the problems found ("line N: ..."); empty = valid. Shared by the renderer's unit
// test and the daemon's integration test.

#include <cstdlib>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace ipopsec::test {

inline std::vector<std::string> checkPrometheusText(const std::string& text) {
  std::vector<std::string> errors;
  static const std::regex metricName("[a-zA-Z_:][a-zA-Z0-9_:]*");
  static const std::regex labelName("[a-zA-Z_][a-zA-Z0-9_]*");
  if (text.empty()) errors.push_back("empty");
  if (!text.empty() && text.back() != '\n') errors.push_back("does not end with a newline");
  std::map<std::string, std::string> type;  // family -> type
  std::set<std::string> help, sampled, series;
  std::string current;  // the family whose samples are being read
  std::istringstream in(text);
  std::string line;
  int n = 0;
  auto err = [&](const std::string& what) { errors.push_back("line " + std::to_string(n) + ": " + what); };
  auto validNumber = [](const std::string& v) {
    if (v == "NaN" || v == "+Inf" || v == "-Inf") return true;
    if (v.empty()) return false;
    char* end = nullptr;
    std::strtod(v.c_str(), &end);
    return end == v.c_str() + v.size() && v.find_first_of("xXnNiI") == std::string::npos;
  };
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) {
      err("empty line");
      continue;
    }
    if (line[0] == '#') {
      std::istringstream l(line.substr(1));
      std::string kw, name;
      l >> kw >> name;
      if (kw != "HELP" && kw != "TYPE") continue;  // a comment
      if (line.rfind("# " + kw + " " + name, 0) != 0) err("malformed " + kw + " line");
      if (!std::regex_match(name, metricName)) err("invalid metric name '" + name + "'");
      if (sampled.count(name)) err(kw + " of " + name + " after its samples");
      if (kw == "HELP") {
        if (!help.insert(name).second) err("second HELP for " + name);
        std::string doc = line.substr(std::min(line.size(), 7 + name.size() + 1));
        for (std::size_t i = 0; i < doc.size(); ++i)
          if (doc[i] == '\\' && (i + 1 >= doc.size() || (doc[i + 1] != '\\' && doc[i + 1] != 'n')))
            err("invalid escape in HELP of " + name);
          else if (doc[i] == '\\')
            ++i;
      } else {
        std::string t, rest;
        l >> t;
        if (std::getline(l, rest) && rest.find_first_not_of(' ') != std::string::npos) err("trailing text after TYPE");
        if (t != "counter" && t != "gauge" && t != "histogram" && t != "summary" && t != "untyped")
          err("invalid type '" + t + "'");
        if (type.count(name)) err("second TYPE for " + name);
        type[name] = t;
        if (!help.count(name)) err("TYPE of " + name + " before its HELP");
      }
      continue;
    }
    // name [{labels}] value [timestamp]
    std::size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    std::string name = line.substr(0, i);
    if (!std::regex_match(name, metricName)) {
      err("invalid metric name '" + name + "'");
      continue;
    }
    std::string labels;
    if (i < line.size() && line[i] == '{') {
      ++i;
      std::set<std::string> seenLabels;
      bool ok = true;
      while (ok && i < line.size() && line[i] != '}') {
        std::size_t eq = line.find('=', i);
        if (eq == std::string::npos) {
          ok = false;
          break;
        }
        std::string ln = line.substr(i, eq - i);
        if (!std::regex_match(ln, labelName) || ln.rfind("__", 0) == 0) err("invalid label name '" + ln + "'");
        if (!seenLabels.insert(ln).second) err("label " + ln + " twice");
        i = eq + 1;
        if (i >= line.size() || line[i] != '"') {
          ok = false;
          break;
        }
        ++i;
        while (i < line.size() && line[i] != '"') {
          if (line[i] == '\\') {
            if (i + 1 >= line.size() || (line[i + 1] != '\\' && line[i + 1] != '"' && line[i + 1] != 'n')) {
              err("invalid escape in label value");
              break;
            }
            ++i;
          }
          ++i;
        }
        if (i >= line.size()) {
          ok = false;
          break;
        }
        ++i;  // closing quote
        if (i < line.size() && line[i] == ',') ++i;
        else if (i < line.size() && line[i] != '}') ok = false;
      }
      if (!ok || i >= line.size()) {
        err("malformed labels");
        continue;
      }
      labels = line.substr(name.size(), i + 1 - name.size());
      ++i;  // '}'
    }
    if (i >= line.size() || line[i] != ' ') {
      err("no value");
      continue;
    }
    std::istringstream rest(line.substr(i + 1));
    std::string value, ts, extra;
    rest >> value >> ts >> extra;
    if (line.substr(i + 1).rfind(value, 0) != 0) err("more than one space before the value");
    if (!validNumber(value)) err("invalid value '" + value + "'");
    if (!ts.empty() && !std::regex_match(ts, std::regex("-?[0-9]+"))) err("invalid timestamp '" + ts + "'");
    if (!extra.empty()) err("trailing text after the sample");
    if (!type.count(name)) err("sample of " + name + " before its TYPE");
    if (type.count(name) && type[name] == "counter" && (name.size() < 6 || name.substr(name.size() - 6) != "_total"))
      err("counter " + name + " does not end in _total");
    if (name != current) {
      if (sampled.count(name)) err("samples of " + name + " not in one group");
      sampled.insert(name);
      current = name;
    }
    if (!series.insert(name + labels).second) err("series " + name + labels + " twice");
  }
  return errors;
}

}  // namespace ipopsec::test
