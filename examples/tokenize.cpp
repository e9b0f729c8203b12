// weft-tokenize: turn text into token ids with a model's tokenizer.
//   weft-tokenize -m PATH (-p TEXT | -f FILE) [--ids] [--no-bos] [--special]
// PATH is a GGUF file, or a model directory holding tokenizer.json or tokenizer.model, or one of those files.
// Prints one "id 'piece'" per line (the piece's bytes, escaped where they are not printable
// UTF-8), or with --ids the ids comma-separated on one line. --special reads special tokens
// written in the text (<|eot_id|>) as one id each.
#include <weft/text/load.hpp>

#include <cstdio>
#include <string>

#include "common.hpp"

namespace {

const char* usage = "usage: weft-tokenize -m PATH (-p TEXT | -f FILE) [--ids] [--no-bos] [--special]";

// The bytes as printable text: whole UTF-8 characters pass, controls and stray bytes are escaped.
std::string escape_piece(const std::string& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size();) {
        const auto u = weft::text::utf8_prefix(std::string_view(s).substr(i));
        const auto c = static_cast<unsigned char>(s[i]);
        if (u.kind == weft::text::Utf8Prefix::complete && u.length > 1) {
            out.append(s, i, static_cast<std::size_t>(u.length));
            i += static_cast<std::size_t>(u.length);
            continue;
        }
        if (c == '\n') out += "\\n";
        else if (c == '\t') out += "\\t";
        else if (c == '\r') out += "\\r";
        else if (c == '\\') out += "\\\\";
        else if (c >= 0x20 && c < 0x7F) out += static_cast<char>(c);
        else {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        }
        ++i;
    }
    return out;
}

int run(int argc, char** argv) {
    std::string model_path, text;
    bool have_text = false, print_ids = false, add_bos = true, special = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "-m" || a == "--model") model_path = examples::flag_value(argc, argv, i);
        else if (a == "-p" || a == "--prompt") text = examples::flag_value(argc, argv, i), have_text = true;
        else if (a == "-f" || a == "--file") text = examples::read_file(examples::flag_value(argc, argv, i)), have_text = true;
        else if (a == "--ids") print_ids = true;
        else if (a == "--no-bos") add_bos = false;
        else if (a == "--special") special = true;
        else if (a == "-h" || a == "--help") {
            std::puts(usage);
            return 0;
        } else throw examples::UsageError("unknown argument '" + a + "'");
    }
    if (model_path.empty()) throw examples::UsageError("no tokenizer: pass -m PATH");
    if (!have_text) throw examples::UsageError("no text: pass -p TEXT or -f FILE");

    const weft::text::Tokenizer tokenizer = weft::text::load_tokenizer(model_path);
    const std::vector<std::int32_t> ids = tokenizer.encode(text, add_bos, special);
    if (print_ids) {
        for (std::size_t i = 0; i < ids.size(); ++i) std::printf("%s%d", i ? "," : "", ids[i]);
        std::printf("\n");
    } else {
        for (std::int32_t id : ids) std::printf("%d '%s'\n", id, escape_piece(tokenizer.token_to_piece(id)).c_str());
    }
    std::fprintf(stderr, "%zu tokens\n", ids.size());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return examples::guarded_main("weft-tokenize", usage, [&] { return run(argc, argv); });
}
