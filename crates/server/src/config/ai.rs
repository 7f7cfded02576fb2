//! AI gateway settings: `OPENAI_*`, `ANTHROPIC_*`, `GEMINI_*` (key and base URL each) and
//! `AI_*` (default model, allow-list, token cap, fallback order, timeout, routes by
//! complexity, circuit breaker).

use std::fmt;
use std::time::Duration;

use super::Secret;
use super::parse::{self, Vars};

/// An AI provider, each with its own wire format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AiProvider {
    /// OpenAI chat completions (and compatible gateways).
    OpenAi,
    /// Anthropic messages.
    Anthropic,
    /// Google Gemini `generateContent`.
    Gemini,
}

impl AiProvider {
    /// Every provider, in the order a default is picked.
    pub const ALL: [AiProvider; 3] = [AiProvider::OpenAi, AiProvider::Anthropic, AiProvider::Gemini];

    /// The provider's name in `provider/model`, metrics and usage dimensions.
    pub fn as_str(self) -> &'static str {
        match self {
            AiProvider::OpenAi => "openai",
            AiProvider::Anthropic => "anthropic",
            AiProvider::Gemini => "gemini",
        }
    }

    /// The variable holding the provider's key.
    pub fn key_variable(self) -> &'static str {
        match self {
            AiProvider::OpenAi => "OPENAI_API_KEY",
            AiProvider::Anthropic => "ANTHROPIC_API_KEY",
            AiProvider::Gemini => "GEMINI_API_KEY",
        }
    }

    fn base_variable(self) -> &'static str {
        match self {
            AiProvider::OpenAi => "OPENAI_BASE_URL",
            AiProvider::Anthropic => "ANTHROPIC_BASE_URL",
            AiProvider::Gemini => "GEMINI_BASE_URL",
        }
    }

    /// The provider's public API base.
    pub fn default_base_url(self) -> &'static str {
        match self {
            AiProvider::OpenAi => "https://api.openai.com/v1",
            AiProvider::Anthropic => "https://api.anthropic.com",
            AiProvider::Gemini => "https://generativelanguage.googleapis.com",
        }
    }

    /// The default models for simple, moderate and complex prompts.
    fn default_routes(self) -> [&'static str; 3] {
        match self {
            AiProvider::OpenAi => ["gpt-4o-mini", "gpt-4o", "gpt-4.1"],
            AiProvider::Anthropic => ["claude-3-5-haiku-latest", "claude-sonnet-4-5", "claude-opus-4-1"],
            AiProvider::Gemini => ["gemini-2.0-flash-lite", "gemini-2.5-flash", "gemini-2.5-pro"],
        }
    }

    fn parse(name: &str) -> Option<AiProvider> {
        AiProvider::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

impl fmt::Display for AiProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A model of a provider, written `provider/model` (`openai/gpt-4o-mini`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ModelRef {
    /// Who serves it.
    pub provider: AiProvider,
    /// The provider's model name.
    pub model: String,
}

/// Longest model name (after the provider).
pub const MAX_MODEL_NAME: usize = 100;

impl ModelRef {
    /// Reads `provider/model`: a known provider, and a model name of 1 to 100 letters, digits,
    /// `.`, `-`, `_`, `:` or `@` (it becomes a URL path segment and a metric label).
    pub fn parse(value: &str) -> Result<ModelRef, String> {
        let invalid = || format!("must be provider/model with provider openai, anthropic or gemini, got {value:?}");
        let (provider, model) = value.trim().split_once('/').ok_or_else(invalid)?;
        let provider = AiProvider::parse(provider).ok_or_else(invalid)?;
        let fits = (1..=MAX_MODEL_NAME).contains(&model.len())
            && model.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'@'));
        if !fits {
            return Err(format!(
                "the model name in {value:?} must be 1 to {MAX_MODEL_NAME} letters, digits, '.', '-', '_', ':' or '@'"
            ));
        }
        Ok(ModelRef { provider, model: model.to_owned() })
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.provider, self.model)
    }
}

/// A configured provider: its key and where its API is.
#[derive(Clone, Debug)]
pub struct AiProviderSettings {
    /// `<PROVIDER>_API_KEY`.
    pub api_key: Secret,
    /// `<PROVIDER>_BASE_URL`, without a trailing `/`.
    pub base_url: String,
}

/// How demanding a routed prompt is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Complexity {
    /// Short, cheap answers.
    Simple,
    /// The everyday model.
    Moderate,
    /// The most capable model.
    Complex,
}

impl Complexity {
    /// Every complexity.
    pub const ALL: [Complexity; 3] = [Complexity::Simple, Complexity::Moderate, Complexity::Complex];

    /// As written in `AI_ROUTES` and requests.
    pub fn as_str(self) -> &'static str {
        match self {
            Complexity::Simple => "simple",
            Complexity::Moderate => "moderate",
            Complexity::Complex => "complex",
        }
    }
}

/// `AI_*` and the providers.
#[derive(Clone, Debug)]
pub struct AiSettings {
    /// `OPENAI_API_KEY` / `OPENAI_BASE_URL`, when a key is set.
    pub openai: Option<AiProviderSettings>,
    /// `ANTHROPIC_API_KEY` / `ANTHROPIC_BASE_URL`, when a key is set.
    pub anthropic: Option<AiProviderSettings>,
    /// `GEMINI_API_KEY` / `GEMINI_BASE_URL`, when a key is set.
    pub gemini: Option<AiProviderSettings>,
    /// `AI_DEFAULT_MODEL` (default: the first configured provider's simple model).
    pub default_model: Option<ModelRef>,
    /// `AI_ALLOWED_MODELS` (default: the default model, the routes and the fallback list).
    pub allowed_models: Vec<ModelRef>,
    /// `AI_MAX_TOKENS`: the most tokens a request may ask for; also what is asked for when a
    /// request names no number.
    pub max_tokens: u32,
    /// `AI_FALLBACK`: tried in order when the chosen model fails before its first token.
    pub fallback: Vec<ModelRef>,
    /// `AI_TIMEOUT_SECONDS`: how long a provider may take to answer (to its first token when
    /// streaming, and between tokens).
    pub timeout: Duration,
    /// `AI_ROUTES`: the model for each complexity (simple, moderate, complex).
    pub routes: [Option<ModelRef>; 3],
    /// `AI_BREAKER_THRESHOLD`: consecutive failures that open a provider's circuit.
    pub breaker_threshold: u32,
    /// `AI_BREAKER_COOLDOWN_SECONDS`: how long an open circuit skips its provider before one
    /// probe is let through.
    pub breaker_cooldown: Duration,
}

impl Default for AiSettings {
    fn default() -> Self {
        AiSettings {
            openai: None,
            anthropic: None,
            gemini: None,
            default_model: None,
            allowed_models: Vec::new(),
            max_tokens: 4096,
            fallback: Vec::new(),
            timeout: Duration::from_secs(60),
            routes: [None, None, None],
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(30),
        }
    }
}

impl AiSettings {
    /// The provider's settings, when its key is set.
    pub fn provider(&self, provider: AiProvider) -> Option<&AiProviderSettings> {
        match provider {
            AiProvider::OpenAi => self.openai.as_ref(),
            AiProvider::Anthropic => self.anthropic.as_ref(),
            AiProvider::Gemini => self.gemini.as_ref(),
        }
    }

    /// Whether any provider has a key.
    pub fn enabled(&self) -> bool {
        AiProvider::ALL.iter().any(|p| self.provider(*p).is_some())
    }

    /// The model for `complexity`.
    pub fn route(&self, complexity: Complexity) -> Option<&ModelRef> {
        self.routes[complexity as usize].as_ref()
    }

    /// Every AI variable as `(VARIABLE, value)`, keys redacted.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let list = |models: &[ModelRef]| models.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
        let mut described = Vec::new();
        for provider in AiProvider::ALL {
            let settings = self.provider(provider);
            described.push((provider.key_variable(), settings.map(|s| s.api_key.to_string()).unwrap_or_default()));
            let base = settings.map_or(provider.default_base_url(), |s| s.base_url.as_str());
            described.push((provider.base_variable(), base.to_owned()));
        }
        let routes = Complexity::ALL
            .iter()
            .filter_map(|c| self.route(*c).map(|m| format!("{}={m}", c.as_str())))
            .collect::<Vec<_>>()
            .join(",");
        described.extend([
            ("AI_DEFAULT_MODEL", self.default_model.as_ref().map(ToString::to_string).unwrap_or_default()),
            ("AI_ALLOWED_MODELS", list(&self.allowed_models)),
            ("AI_MAX_TOKENS", self.max_tokens.to_string()),
            ("AI_FALLBACK", list(&self.fallback)),
            ("AI_TIMEOUT_SECONDS", self.timeout.as_secs().to_string()),
            ("AI_ROUTES", routes),
            ("AI_BREAKER_THRESHOLD", self.breaker_threshold.to_string()),
            ("AI_BREAKER_COOLDOWN_SECONDS", self.breaker_cooldown.as_secs().to_string()),
        ]);
        described
    }
}

/// A comma-separated list of `provider/model`, without repeats.
fn model_list(value: &str) -> Result<Vec<ModelRef>, String> {
    let mut models: Vec<ModelRef> = Vec::new();
    for item in value.split(',').map(str::trim).filter(|item| !item.is_empty()) {
        let model = ModelRef::parse(item)?;
        if !models.contains(&model) {
            models.push(model);
        }
    }
    if models.len() > 50 {
        return Err("lists at most 50 models".into());
    }
    Ok(models)
}

/// `simple=provider/model,moderate=…,complex=…`; complexities left out keep their default.
fn routes(value: &str) -> Result<[Option<ModelRef>; 3], String> {
    let mut routes = [None, None, None];
    for item in value.split(',').map(str::trim).filter(|item| !item.is_empty()) {
        let invalid = || format!("must be complexity=provider/model pairs (simple, moderate, complex), got {item:?}");
        let (name, model) = item.split_once('=').ok_or_else(invalid)?;
        let complexity = Complexity::ALL.into_iter().find(|c| c.as_str() == name.trim()).ok_or_else(invalid)?;
        routes[complexity as usize] = Some(ModelRef::parse(model)?);
    }
    Ok(routes)
}

fn provider(vars: &mut Vars<'_>, provider: AiProvider) -> Option<AiProviderSettings> {
    let key = vars.optional(provider.key_variable(), |v| Ok(Secret::new(v))).flatten();
    let base = vars.parse(provider.base_variable(), provider.default_base_url(), parse::http_url);
    let base_url = base?.trim_end_matches('/').to_owned();
    key.map(|api_key| AiProviderSettings { api_key, base_url })
}

/// Reads the AI variables; each problem is recorded in `vars`.
pub(super) fn settings(vars: &mut Vars<'_>) -> AiSettings {
    let defaults = AiSettings::default();
    let openai = provider(vars, AiProvider::OpenAi);
    let anthropic = provider(vars, AiProvider::Anthropic);
    let gemini = provider(vars, AiProvider::Gemini);
    let default_model = vars.optional("AI_DEFAULT_MODEL", ModelRef::parse).flatten();
    let allowed = vars.optional("AI_ALLOWED_MODELS", model_list).flatten();
    let fallback = vars.parse("AI_FALLBACK", "", model_list).unwrap_or_default();
    let explicit_routes = vars.parse("AI_ROUTES", "", routes).unwrap_or_default();
    let number = |vars: &mut Vars<'_>, name: &str, default: u64, min: u64, max: u64| {
        vars.parse(name, &default.to_string(), |v| parse::number(v, min, max)).unwrap_or(default)
    };
    let max_tokens = number(vars, "AI_MAX_TOKENS", u64::from(defaults.max_tokens), 1, 1_000_000) as u32;
    let timeout = Duration::from_secs(number(vars, "AI_TIMEOUT_SECONDS", 60, 1, 3600));
    let breaker_threshold = number(vars, "AI_BREAKER_THRESHOLD", 5, 1, 1000) as u32;
    let breaker_cooldown = Duration::from_secs(number(vars, "AI_BREAKER_COOLDOWN_SECONDS", 30, 1, 86_400));
    let mut settings = AiSettings {
        openai,
        anthropic,
        gemini,
        default_model,
        allowed_models: Vec::new(),
        max_tokens,
        fallback,
        timeout,
        routes: [None, None, None],
        breaker_threshold,
        breaker_cooldown,
    };
    let Some(first) = AiProvider::ALL.into_iter().find(|p| settings.provider(*p).is_some()) else {
        // No provider: the routes answer 503 and nothing else needs checking.
        settings.routes = explicit_routes;
        settings.allowed_models = allowed.unwrap_or_default();
        return settings;
    };
    let default_model = settings
        .default_model
        .clone()
        .unwrap_or_else(|| ModelRef { provider: first, model: first.default_routes()[0].to_owned() });
    let route_provider = default_model.provider;
    for (index, route) in explicit_routes.into_iter().enumerate() {
        settings.routes[index] = Some(route.unwrap_or_else(|| ModelRef {
            provider: route_provider,
            model: route_provider.default_routes()[index].to_owned(),
        }));
    }
    settings.default_model = Some(default_model);
    settings.allowed_models = allowed.unwrap_or_else(|| {
        let mut all: Vec<ModelRef> = settings.default_model.iter().cloned().collect();
        all.extend(settings.routes.iter().flatten().cloned());
        all.extend(settings.fallback.iter().cloned());
        let mut unique: Vec<ModelRef> = Vec::new();
        for model in all {
            if !unique.contains(&model) {
                unique.push(model);
            }
        }
        unique
    });
    // Every model the configuration names must be served by a configured provider.
    let mut named: Vec<(&str, &ModelRef)> = Vec::new();
    named.extend(settings.default_model.iter().map(|m| ("AI_DEFAULT_MODEL", m)));
    named.extend(settings.allowed_models.iter().map(|m| ("AI_ALLOWED_MODELS", m)));
    named.extend(settings.fallback.iter().map(|m| ("AI_FALLBACK", m)));
    named.extend(settings.routes.iter().flatten().map(|m| ("AI_ROUTES", m)));
    let mut problems: Vec<(&str, String)> = Vec::new();
    for (variable, model) in named {
        if settings.provider(model.provider).is_none() {
            let problem = format!("names {model}, but {} is not set", model.provider.key_variable());
            if !problems.iter().any(|(v, p)| *v == variable && *p == problem) {
                problems.push((variable, problem));
            }
        }
    }
    for (variable, problem) in problems {
        vars.problem(variable, &problem);
    }
    settings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> (AiSettings, Vec<String>) {
        let map: std::collections::HashMap<String, String> =
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let lookup = move |name: &str| map.get(name).cloned();
        let mut vars = Vars::new(&lookup);
        let settings = settings(&mut vars);
        (settings, vars.into_problems())
    }

    #[test]
    fn nothing_set_is_a_disabled_gateway_without_problems() {
        let (settings, problems) = read(&[]);
        assert!(problems.is_empty(), "{problems:?}");
        assert!(!settings.enabled());
        assert_eq!((settings.max_tokens, settings.timeout), (4096, Duration::from_secs(60)));
    }

    #[test]
    fn one_key_gives_sensible_defaults() {
        let (settings, problems) = read(&[("ANTHROPIC_API_KEY", "sk-ant-x")]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(settings.default_model.as_ref().unwrap().to_string(), "anthropic/claude-3-5-haiku-latest");
        assert_eq!(settings.route(Complexity::Complex).unwrap().to_string(), "anthropic/claude-opus-4-1");
        assert_eq!(settings.anthropic.as_ref().unwrap().base_url, "https://api.anthropic.com");
        assert_eq!(settings.allowed_models.len(), 3, "{:?}", settings.allowed_models);
        let described = settings.describe();
        assert!(described.contains(&("ANTHROPIC_API_KEY", "[REDACTED]".to_owned())));
        assert!(!format!("{settings:?}").contains("sk-ant-x"));
    }

    #[test]
    fn models_of_unconfigured_providers_and_bad_values_name_their_variable() {
        let (_, problems) = read(&[
            ("OPENAI_API_KEY", "sk"),
            ("AI_FALLBACK", "gemini/gemini-2.5-flash"),
            ("AI_ROUTES", "simple=openai/gpt-4o-mini,hard=openai/o3"),
            ("AI_MAX_TOKENS", "0"),
        ]);
        let has = |prefix: &str| problems.iter().any(|p| p.starts_with(prefix));
        assert!(has("AI_FALLBACK: names gemini/gemini-2.5-flash, but GEMINI_API_KEY"), "{problems:?}");
        assert!(has("AI_ROUTES: "), "{problems:?}");
        assert!(has("AI_MAX_TOKENS: "), "{problems:?}");
        let (_, problems) = read(&[("OPENAI_API_KEY", "sk"), ("OPENAI_BASE_URL", "ftp://x")]);
        assert!(problems[0].starts_with("OPENAI_BASE_URL: "), "{problems:?}");
        for bad in ["gpt-4o", "mistral/large", "openai/", "openai/a b", "openai/../x", "openai/x?y"] {
            assert!(ModelRef::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(ModelRef::parse("gemini/gemini-2.5-flash").unwrap().provider, AiProvider::Gemini);
    }

    #[test]
    fn explicit_routes_keep_defaults_for_what_they_leave_out() {
        let (settings, problems) = read(&[
            ("OPENAI_API_KEY", "sk"),
            ("GEMINI_API_KEY", "g"),
            ("GEMINI_BASE_URL", "http://127.0.0.1:9/"),
            ("AI_ROUTES", "complex=gemini/gemini-2.5-pro"),
            ("AI_ALLOWED_MODELS", "openai/gpt-4o-mini, openai/gpt-4o-mini"),
        ]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(settings.route(Complexity::Simple).unwrap().to_string(), "openai/gpt-4o-mini");
        assert_eq!(settings.route(Complexity::Complex).unwrap().to_string(), "gemini/gemini-2.5-pro");
        assert_eq!(settings.gemini.as_ref().unwrap().base_url, "http://127.0.0.1:9");
        assert_eq!(settings.allowed_models.len(), 1);
    }
}
