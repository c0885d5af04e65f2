#include "replicator/cli_flags.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace xdc {
namespace {

// One argument after the first pass: a flag, with the value it took, or a positional word.
struct Token {
  bool is_flag = false;
  std::string text;            // a positional word, or the flag's name without dashes
  std::string spelled;         // the flag as written, without "=VALUE": "--shard", "-x"
  bool value_inline = false;   // --flag=VALUE
  bool value_missing = false;  // it takes a value and none follows
  std::string value;
};

const FlagSpec* Find(const std::vector<FlagSpec>& flags, const std::string& name) {
  for (const FlagSpec& flag : flags) {
    if (flag.name == name) return &flag;
  }
  return nullptr;
}

bool IsHelp(const std::string& arg) { return arg == "--help" || arg == "-h"; }

// A flag is "--NAME[=VALUE]", or "-X" (refused unless -h); "-5" and "-" are positional words.
bool LooksLikeFlag(const std::string& arg) {
  return arg.size() > 1 && arg[0] == '-' &&
         !absl::ascii_isdigit(static_cast<unsigned char>(arg[1]));
}

// Splits `args` into flags and positional words. Whether a flag takes the next argument depends
// on its arity anywhere in `known` (the command is not known yet); an unknown flag takes it when
// `unknown_takes_value` (to find the command of "dlq --limt 5", which is refused either way).
std::vector<Token> Tokenize(const std::vector<std::string>& args,
                            const std::map<std::string, FlagArity>& known,
                            bool unknown_takes_value) {
  std::vector<Token> tokens;
  for (size_t i = 0; i < args.size(); ++i) {
    Token token;
    const std::string& arg = args[i];
    if (!LooksLikeFlag(arg)) {
      token.text = arg;
      tokens.push_back(std::move(token));
      continue;
    }
    token.is_flag = true;
    token.spelled = arg;
    if (absl::StartsWith(arg, "--")) {
      const size_t eq = arg.find('=');
      token.spelled = arg.substr(0, eq);
      token.text = token.spelled.substr(2);
      if (eq != std::string::npos) {
        token.value_inline = true;
        token.value = arg.substr(eq + 1);
      }
    }
    auto it = known.find(token.text);
    const bool takes_value =
        it == known.end() ? unknown_takes_value : it->second != FlagArity::kNone;
    if (takes_value && !token.value_inline) {
      if (i + 1 < args.size() && !absl::StartsWith(args[i + 1], "--")) {
        token.value = args[++i];
      } else {
        token.value_missing = it != known.end();
      }
    }
    tokens.push_back(std::move(token));
  }
  return tokens;
}

struct Resolution {
  const CommandSpec* command = nullptr;
  size_t words_given = 0;  // how many of the positional words are the command's
  std::string error;
};

bool WordsMatch(const std::vector<std::string>& words, size_t count,
                const std::vector<std::string>& positional) {
  return count <= positional.size() &&
         std::equal(words.begin(), words.begin() + count, positional.begin());
}

// The command the positional words name: the longest whose words they start with, else one
// whose optional last word is all that is left out.
Resolution Resolve(const std::vector<std::string>& positional,
                   const std::vector<CommandSpec>& commands) {
  Resolution r;
  if (positional.empty()) return r;
  for (const CommandSpec& c : commands) {
    if (WordsMatch(c.words, c.words.size(), positional) &&
        (r.command == nullptr || c.words.size() > r.command->words.size())) {
      r.command = &c;
      r.words_given = c.words.size();
    }
  }
  if (r.command != nullptr) return r;
  for (const CommandSpec& c : commands) {
    if (c.last_word_optional && positional.size() == c.words.size() - 1 &&
        WordsMatch(c.words, positional.size(), positional)) {
      r.command = &c;
      r.words_given = positional.size();
      return r;
    }
  }
  std::vector<std::string> verbs;
  for (const CommandSpec& c : commands) {
    if (c.words.size() > 1 && c.words[0] == positional[0]) verbs.push_back(c.words[1]);
  }
  if (verbs.empty()) {
    r.error = absl::StrCat("unknown command '", positional[0], "'");
  } else if (positional.size() == 1) {
    r.error = absl::StrCat("'", positional[0], "' needs one of: ", absl::StrJoin(verbs, ", "));
  } else {
    r.error = absl::StrCat("unknown command '", positional[0], " ", positional[1], "'; '",
                           positional[0], "' takes ", absl::StrJoin(verbs, ", "));
  }
  return r;
}

std::string UnknownFlag(const Token& token, const CommandSpec* command,
                        const std::vector<std::string>& candidates) {
  std::string message = absl::StrCat("unknown flag ", token.spelled);
  if (command != nullptr) absl::StrAppend(&message, " for '", command->Name(), "'");
  if (std::string close = ClosestFlag(token.text, candidates); !close.empty()) {
    absl::StrAppend(&message, " (did you mean --", close, "?)");
  }
  return message;
}

// Checks one flag against its spec; records its value. An error message, or "".
std::string TakeFlag(const Token& token, const FlagSpec& spec, CommandLine& line) {
  if (spec.arity == FlagArity::kNone && token.value_inline) {
    return absl::StrCat(token.spelled, " takes no value");
  }
  if (spec.arity != FlagArity::kNone && token.value_missing) {
    return absl::StrCat(token.spelled, " needs a value");
  }
  std::vector<std::string>& values = line.flags[spec.name];
  if (spec.arity == FlagArity::kOne && !values.empty()) {
    return absl::StrCat(token.spelled, " is given more than once ('", values.back(), "', then '",
                        token.value, "')");
  }
  values.push_back(spec.arity == FlagArity::kNone ? "true" : token.value);
  return "";
}

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

std::string CommandSpec::Name() const { return absl::StrJoin(words, " "); }

std::string FlagsHelp(const std::vector<FlagSpec>& flags) {
  std::string text;
  for (const FlagSpec& flag : flags) {
    const std::string left =
        absl::StrCat("  --", flag.name, flag.value_name.empty() ? "" : " ", flag.value_name,
                     flag.arity == FlagArity::kRepeated ? " (repeatable)" : "");
    absl::StrAppend(&text, absl::StrFormat("%-40s %s\n", left, flag.help));
  }
  return text;
}

std::string ClosestFlag(const std::string& name, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::min<size_t>(3, name.size());
  for (const std::string& candidate : candidates) {
    const size_t distance = EditDistance(name, candidate);
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

CommandLine ParseCommandLine(const std::vector<std::string>& args,
                             const std::vector<FlagSpec>& globals,
                             const std::vector<CommandSpec>& commands) {
  std::map<std::string, FlagArity> known;
  std::vector<std::string> all_names;
  for (const FlagSpec& flag : globals) known.emplace(flag.name, flag.arity);
  for (const CommandSpec& c : commands) {
    for (const FlagSpec& flag : c.flags) known.emplace(flag.name, flag.arity);
  }
  for (const auto& [name, arity] : known) all_names.push_back(name);

  CommandLine line;
  auto positional_of = [](const std::vector<Token>& tokens) {
    std::vector<std::string> words;
    for (const Token& token : tokens) {
      if (!token.is_flag) words.push_back(token.text);
    }
    return words;
  };
  std::vector<Token> tokens = Tokenize(args, known, /*unknown_takes_value=*/false);
  std::vector<std::string> positional = positional_of(tokens);
  Resolution resolution = Resolve(positional, commands);
  if (resolution.command == nullptr) {
    std::vector<Token> retokenized = Tokenize(args, known, /*unknown_takes_value=*/true);
    std::vector<std::string> retried = positional_of(retokenized);
    if (Resolution r = Resolve(retried, commands); r.command != nullptr) {
      tokens = std::move(retokenized);
      positional = std::move(retried);
      resolution = std::move(r);
    }
  }
  line.command = resolution.command;
  if (line.command != nullptr) {
    line.positional = line.command->words;
    line.positional.insert(line.positional.end(), positional.begin() + resolution.words_given,
                           positional.end());
  }
  if (std::any_of(args.begin(), args.end(), IsHelp)) {
    line.help = true;
    return line;
  }
  auto fail = [&](std::string error) {
    line.error = std::move(error);
    line.flags.clear();
    return line;
  };

  if (line.command == nullptr) {
    // Refuse what no command takes first: a misspelled global flag, not the command, is the news.
    for (const Token& token : tokens) {
      if (!token.is_flag) continue;
      if (!known.contains(token.text)) return fail(UnknownFlag(token, nullptr, all_names));
      if (const FlagSpec* global = Find(globals, token.text); global != nullptr) {
        if (std::string error = TakeFlag(token, *global, line); !error.empty()) return fail(error);
      }
    }
    if (!resolution.error.empty()) return fail(resolution.error);
    line.flags.clear();
    return line;
  }

  std::vector<std::string> candidates;
  for (const FlagSpec& flag : globals) candidates.push_back(flag.name);
  for (const FlagSpec& flag : line.command->flags) candidates.push_back(flag.name);
  for (const Token& token : tokens) {
    if (!token.is_flag) continue;
    const FlagSpec* spec = Find(globals, token.text);
    if (spec == nullptr) spec = Find(line.command->flags, token.text);
    if (spec == nullptr) return fail(UnknownFlag(token, line.command, candidates));
    if (std::string error = TakeFlag(token, *spec, line); !error.empty()) return fail(error);
  }
  const size_t operands = line.positional.size() - line.command->words.size();
  const int max = line.command->max_operands;
  if (max != kAnyOperands && operands > static_cast<size_t>(max)) {
    return fail(absl::StrCat("unexpected argument '",
                             line.positional[line.command->words.size() + max], "' for '",
                             line.command->Name(), "'"));
  }
  return line;
}

}  // namespace xdc
