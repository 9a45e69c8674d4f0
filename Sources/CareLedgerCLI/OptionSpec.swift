import FoundationEssentials

/// One `--name <value>` option: where it may also come from, its default, and its help line.
struct OptionSpec {
    let name: String
    let valueName: String
    let help: String
    let environment: String?
    let defaultValue: String?

    /// The help text's line(s) for this option.
    var helpLines: [String] {
        var origin: [String] = []
        if let environment { origin.append("env \(environment)") }
        if let defaultValue { origin.append("default \(defaultValue)") }
        let suffix = origin.isEmpty ? "" : " (\(origin.joined(separator: ", ")))"
        return ["  --\(name) <\(valueName)>", "        \(help)\(suffix)"]
    }
}

/// Command-line words for one command, split into options and positionals and checked against the
/// command's option list, so an unknown option is an error rather than silently ignored.
struct ParsedArguments {
    private(set) var values: [String: String] = [:]
    private(set) var flags: Set<String> = []
    private(set) var positionals: [String] = []

    init(_ words: [String], options: [OptionSpec], flags knownFlags: Set<String>) throws(CLIError) {
        let optionNames = Set(options.map(\.name))
        var index = 0
        while index < words.count {
            let word = words[index]
            index += 1
            guard word.hasPrefix("--") else {
                positionals.append(word)
                continue
            }
            let body = word.dropFirst(2)
            let name = String(body.prefix { $0 != "=" })
            if knownFlags.contains(name) {
                guard !body.contains("=") else { throw CLIError("--\(name) takes no value") }
                flags.insert(name)
            } else if optionNames.contains(name) {
                if let equals = body.firstIndex(of: "=") {
                    values[name] = String(body[body.index(after: equals)...])
                } else {
                    guard index < words.count else { throw CLIError("--\(name) needs a value") }
                    values[name] = words[index]
                    index += 1
                }
            } else {
                throw CLIError("unknown option --\(name)")
            }
        }
    }

    /// Settings from a config file: the last place looked before the default.
    private var fileValues: [String: String] = [:]

    /// The value from the command line, else the environment, else the config file, else the default.
    func value(of option: OptionSpec, environment: [String: String]) -> String? {
        if let value = values[option.name] { return value }
        if let variable = option.environment, let value = environment[variable], !value.isEmpty { return value }
        if let value = fileValues[option.name] { return value }
        return option.defaultValue
    }

    /// Reads `key = value` lines (`#` comments, blank lines) from `path`: every key must be one of
    /// `options` or `flags` (a flag's value `true` or `false`), else a one-line error naming the line.
    /// Flags set on the command line stay set.
    mutating func readConfigFile(_ path: String, options: [OptionSpec], flags knownFlags: Set<String>) throws(CLIError) {
        guard let data = FileManager.default.contents(atPath: path) else { throw CLIError("cannot read the config file '\(path)'") }
        let names = Set(options.map(\.name))
        for (number, rawLine) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let blank: Set<Character> = [" ", "\t", "\r"]
            let line = String(rawLine).trimmingCharacters(blank)
            guard !line.isEmpty, !line.hasPrefix("#") else { continue }
            guard let equals = line.firstIndex(of: "=") else { throw CLIError("\(path):\(number + 1): expected 'name = value'") }
            let name = String(line[..<equals]).trimmingCharacters(blank)
            let value = String(line[line.index(after: equals)...]).trimmingCharacters(blank)
            if knownFlags.contains(name) {
                guard value == "true" || value == "false" else { throw CLIError("\(path):\(number + 1): '\(name)' must be true or false") }
                if value == "true" { flags.insert(name) }
            } else if names.contains(name) {
                fileValues[name] = value
            } else {
                throw CLIError("\(path):\(number + 1): unknown setting '\(name)'")
            }
        }
    }

    /// The option's value as an integer in `range`, or a one-line error naming the option.
    func integer(_ option: OptionSpec, _ environment: [String: String], in range: ClosedRange<Int>) throws(CLIError) -> Int {
        let text = value(of: option, environment: environment) ?? ""
        guard let value = Int(text), range.contains(value) else {
            throw CLIError("--\(option.name) must be an integer from \(range.lowerBound) to \(range.upperBound), got '\(text)'")
        }
        return value
    }
}

extension String {
    func trimmingCharacters(_ characters: Set<Character>) -> String {
        String(drop { characters.contains($0) }.reversed().drop { characters.contains($0) }.reversed())
    }
}
