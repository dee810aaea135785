// The examples in examples/github and examples/forjar (and the systemd units in contrib) must stay
// true to the real commands: every file parses as YAML of the right shape, and every silo command
// line in them is accepted by silo's own parser and by the command it names.

import Foundation
import Testing
@testable import SiloCLI
@testable import SiloCore

/// Finds every `silo ...` command line in the examples (workflow run: steps, hook scripts, forjar
/// file contents, systemd ExecStart lines), with ${{ }} expressions and $(...) / $VAR values replaced
/// by stand-ins of the right form. Python, because Debian's python3-yaml is the YAML parser at hand.
private let extractor = #"""
import json, re, shlex, sys, yaml, os
root = sys.argv[1]
files = {}
def commands(text):
    text = re.sub(r'\$\{\{[^}]*\}\}', 'x1', text).replace('\\\n', ' ')
    out = []
    for line in text.splitlines():
        if line.strip().startswith('#'): continue
        for m in re.finditer(r'(?:^|[\s(;|&"])(?:/usr/local/bin/)?silo\s', line):
            lex = shlex.shlex(line[m.end():], posix=True, punctuation_chars=';&|()<>')
            lex.whitespace_split = True
            toks = []
            for t in lex:
                if set(t) <= set(';&|()<>'): break
                toks.append(t)
            fixed = []
            for i, t in enumerate(toks):
                if '$' in t and not t.startswith('$RUNNER_TEMP'):
                    t = '1000' if i > 0 and toks[i - 1] in ('--uid', '--gid') else 'pr-1'
                fixed.append(t)
            out.append(fixed)
    return out
def walk(node, found):
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ('run', 'content') and isinstance(v, str): found += commands(v)
            else: walk(v, found)
    elif isinstance(node, list):
        for v in node: walk(v, found)
for d, _, names in os.walk(root):
    for n in sorted(names):
        p = os.path.join(d, n)
        text = open(p).read()
        if n.endswith(('.yml', '.yaml')):
            doc = yaml.safe_load(text)
            found = []
            walk(doc, found)
            files[p] = {"kind": "yaml", "doc": doc, "commands": found}
        elif n.endswith(('.sh', '.service')):
            if n.endswith('.service'):
                text = '\n'.join(l[len('ExecStart='):] for l in text.splitlines() if l.startswith('ExecStart='))
            files[p] = {"kind": "text", "commands": commands(text)}
print(json.dumps(files, default=str))
"""#

@Suite("examples")
struct ExamplesTests {
    func extract(_ dir: String) throws -> [String: [String: Any]] {
        let r = try run("/usr/bin/python3", ["-c", extractor, Repo.root + "/" + dir])
        guard r.status == 0 else { throw TestFailure("extracting \(dir): \(r.stderr)") }
        return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: [String: Any]] ?? [:]
    }

    /// Parses `argv` as silo would and builds the command it names (which checks the values).
    func accepts(_ argv: [String]) -> String? {
        do {
            guard case .run(let spec, let parsed) = try SiloCLI.parser.parse(argv) else { return nil }
            guard let type = SiloCLI.commandTypes.first(where: { $0.spec.name == spec.name }) else { return "no command \(spec.name)" }
            _ = try type.init(parsed)
            return nil
        } catch {
            return error.message
        }
    }

    @Test("every workflow, hook, recipe and unit parses, and every silo command line in them is valid")
    func examples() throws {
        var files = try extract("examples/github")
        files.merge(try extract("examples/forjar")) { a, _ in a }
        files.merge(try extract("contrib/systemd")) { a, _ in a }
        let names = files.keys.map { ($0 as NSString).lastPathComponent }.sorted()
        #expect(names == ["bare-metal.yml", "container-hooks.yml", "docker.yml", "forjar.yaml", "job-completed.sh", "job-started.sh", "silo-reap.service"])
        var total = 0
        for (path, file) in files.sorted(by: { $0.key < $1.key }) {
            let commands = file["commands"] as? [[String]] ?? []
            total += commands.count
            // (The container job leaves silo to the runner's hooks: its steps only read what they set.)
            #expect(!commands.isEmpty || path.hasSuffix("container-hooks.yml"), "\(path) uses silo")
            for argv in commands {
                #expect(accepts(argv) == nil, "\(path): silo \(argv.joined(separator: " ")): \(accepts(argv) ?? "")")
            }
            guard file["kind"] as? String == "yaml", let doc = file["doc"] as? [String: Any] else { continue }
            if path.contains("/github/") {
                let jobs = try #require(doc["jobs"] as? [String: [String: Any]], "\(path) has jobs")
                #expect(doc["on"] != nil || doc["true"] != nil, "\(path) has triggers") // YAML 1.1 reads `on` as true
                for (name, job) in jobs {
                    #expect(job["runs-on"] != nil, "\(path) job \(name) says where it runs")
                    #expect(!(job["steps"] as? [Any] ?? []).isEmpty, "\(path) job \(name) has steps")
                }
            } else {
                let resources = try #require(doc["resources"] as? [String: [String: Any]], "\(path) has resources")
                #expect(resources.values.allSatisfy { $0["type"] != nil && $0["machine"] != nil }, "every resource has a type and a machine")
                let root = try #require(resources.values.first { $0["path"] as? String == "/var/lib/silo" })
                #expect(root["owner"] as? String == "runner" && root["mode"] as? String == "0755")
            }
        }
        #expect(total >= 12, "the examples' silo command lines were found (\(total))")
    }

    @Test("the extractor sees what the examples say, and a wrong command line is caught")
    func catchesMistakes() {
        #expect(accepts(["mount", "--key", "pr-1", "--user", "1000:1000"]) == nil)
        #expect(accepts(["lease", "acquire", "--holder", "h"])?.contains("--ttl") == true)
        #expect(accepts(["mount", "--home", "/x"])?.contains("unknown option '--home'") == true)
        #expect(accepts(["hook", "job-ended"])?.contains("unknown event") == true)
    }
}
