// Reader::root (yaml_reader.hpp): the document check. A file holds exactly one YAML
// document with a mapping at its top; a syntax error, an empty file, several documents or
// another top level is an issue at its line.

#include "core/config/yaml_reader.hpp"

#include <yaml-cpp/eventhandler.h>

#include <sstream>

namespace ipopsec::yaml {
namespace {

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

}  // namespace ipopsec::yaml
