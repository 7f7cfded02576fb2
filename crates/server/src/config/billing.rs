//! Billing settings shared by every store: which store product or price is which plan
//! (`STRIPE_PRICES`, `APPLE_PRODUCTS`, `GOOGLE_PRODUCTS`) and where the billing pages may send a
//! browser back to (`FRONTEND_URL`, `BILLING_REDIRECT_ORIGINS`).

use std::collections::BTreeMap;

use super::parse::Vars;

/// The most entries a product map may hold.
const MAX_ENTRIES: usize = 100;

/// A paid plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Plan {
    /// No paid plan.
    Free,
    /// The middle plan.
    Pro,
    /// The top plan.
    Enterprise,
}

impl Plan {
    /// Every plan, cheapest first.
    pub const ALL: [Plan; 3] = [Plan::Free, Plan::Pro, Plan::Enterprise];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Pro => "pro",
            Plan::Enterprise => "enterprise",
        }
    }

    /// The plan called `name`.
    pub fn from_name(name: &str) -> Option<Plan> {
        Plan::ALL.into_iter().find(|plan| plan.as_str() == name)
    }
}

/// What the stores' ids mean.
#[derive(Clone, Debug, Default)]
pub struct BillingSettings {
    /// `STRIPE_PRICES`: `pro_monthly=price_…` → (`pro_monthly`, Stripe price id, plan).
    pub stripe_prices: BTreeMap<String, (String, Plan)>,
    /// `APPLE_PRODUCTS`: App Store product id → plan.
    pub apple_products: BTreeMap<String, Plan>,
    /// `GOOGLE_PRODUCTS`: Google Play product id → plan.
    pub google_products: BTreeMap<String, Plan>,
    /// `FRONTEND_URL` and `BILLING_REDIRECT_ORIGINS`: the origins a redirect URL may start with.
    pub redirect_origins: Vec<String>,
}

impl BillingSettings {
    /// The plan of the Stripe price `price_id`.
    pub fn stripe_plan(&self, price_id: &str) -> Option<Plan> {
        self.stripe_prices.values().find(|(id, _)| id == price_id).map(|(_, plan)| *plan)
    }

    /// Whether `url` may be a redirect target: it starts with an allowed origin followed by
    /// the end, `/`, `?` or `#` (so `https://app.example.com.evil.test` is refused).
    pub fn is_allowed_redirect(&self, url: &str) -> bool {
        self.redirect_origins.iter().any(|origin| {
            url.strip_prefix(origin.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?', '#']))
        })
    }
}

/// Reads the billing variables; `frontend_url` is always an allowed redirect origin.
pub(super) fn settings(vars: &mut Vars<'_>, frontend_url: &str) -> BillingSettings {
    let stripe_prices = product_map(vars, "STRIPE_PRICES", true).into_iter().collect();
    let products = |vars: &mut Vars<'_>, name| {
        product_map(vars, name, false).into_iter().map(|(_, (product, plan))| (product, plan)).collect()
    };
    let apple_products = products(vars, "APPLE_PRODUCTS");
    let google_products = products(vars, "GOOGLE_PRODUCTS");
    let mut redirect_origins = vec![origin_of(frontend_url)];
    if let Some(Some(extra)) = vars.optional("BILLING_REDIRECT_ORIGINS", |v| {
        v.split(',').map(str::trim).filter(|o| !o.is_empty()).map(check_origin).collect::<Result<Vec<_>, _>>()
    }) {
        redirect_origins.extend(extra);
    }
    BillingSettings { stripe_prices, apple_products, google_products, redirect_origins }
}

/// `key=id` pairs. For Stripe (`keyed`) the key is `<plan>_<interval>` and the value a price id;
/// for the stores the key is the store's product id and the value a plan name.
fn product_map(vars: &mut Vars<'_>, name: &str, keyed: bool) -> BTreeMap<String, (String, Plan)> {
    let parsed = vars.optional(name, |value| {
        let mut map = BTreeMap::new();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (key, id) = entry
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| format!("{entry:?} is not key=value"))?;
            if key.is_empty() || id.is_empty() || key.len() > 200 || id.len() > 200 {
                return Err(format!("{entry:?}: both sides must be 1 to 200 characters"));
            }
            let plan_name = if keyed { key.split('_').next().unwrap_or_default() } else { id };
            let plan = Plan::from_name(plan_name)
                .filter(|plan| *plan != Plan::Free)
                .ok_or_else(|| format!("{entry:?}: {plan_name:?} is not a paid plan (pro or enterprise)"))?;
            let (key, id) = if keyed { (key, id) } else { (key, key) };
            if map.insert(key.to_owned(), (id.to_owned(), plan)).is_some() {
                return Err(format!("{key:?} appears twice"));
            }
        }
        if map.len() > MAX_ENTRIES {
            return Err(format!("at most {MAX_ENTRIES} entries"));
        }
        Ok(map)
    });
    parsed.flatten().unwrap_or_default()
}

fn check_origin(value: &str) -> Result<String, String> {
    let well_formed = (value.starts_with("https://") || value.starts_with("http://"))
        && value.split("://").nth(1).is_some_and(|host| !host.is_empty() && !host.contains(['/', '?', '#', '@']));
    if well_formed {
        Ok(value.to_owned())
    } else {
        Err(format!("{value:?} is not an origin such as https://app.example.com"))
    }
}

/// `scheme://host[:port]` of an absolute URL.
fn origin_of(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    format!("{scheme}://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> (BillingSettings, Vec<String>) {
        let lookup = |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned());
        let mut vars = Vars::new(&lookup);
        let settings = settings(&mut vars, "https://app.example.com/welcome");
        (settings, vars.into_problems())
    }

    #[test]
    fn prices_and_products_map_to_paid_plans() {
        let (settings, problems) = read(&[
            ("STRIPE_PRICES", "pro_monthly=price_1, pro_yearly=price_2,enterprise_monthly=price_3"),
            ("APPLE_PRODUCTS", "com.example.pro=pro"),
            ("GOOGLE_PRODUCTS", "ent_yearly=enterprise"),
        ]);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(settings.stripe_prices["pro_yearly"], ("price_2".to_owned(), Plan::Pro));
        assert_eq!(settings.stripe_plan("price_3"), Some(Plan::Enterprise));
        assert_eq!(settings.stripe_plan("price_9"), None);
        assert_eq!(settings.apple_products["com.example.pro"], Plan::Pro);
        assert_eq!(settings.google_products["ent_yearly"], Plan::Enterprise);
    }

    #[test]
    fn malformed_maps_name_the_variable() {
        for (name, value) in [
            ("STRIPE_PRICES", "free_monthly=price_1"),
            ("STRIPE_PRICES", "gold_monthly=price_1"),
            ("STRIPE_PRICES", "pro_monthly"),
            ("APPLE_PRODUCTS", "a=pro,a=enterprise"),
            ("GOOGLE_PRODUCTS", "x=platinum"),
            ("BILLING_REDIRECT_ORIGINS", "javascript:alert(1)"),
            ("BILLING_REDIRECT_ORIGINS", "https://a.example.com/path"),
        ] {
            let (_, problems) = read(&[(name, value)]);
            assert!(problems.len() == 1 && problems[0].starts_with(name), "{name}={value}: {problems:?}");
        }
    }

    #[test]
    fn redirects_must_start_with_an_allowed_origin_and_end_there() {
        let (settings, _) = read(&[("BILLING_REDIRECT_ORIGINS", "https://billing.example.com:8443")]);
        for ok in
            ["https://app.example.com", "https://app.example.com/billing?done=1", "https://billing.example.com:8443/#x"]
        {
            assert!(settings.is_allowed_redirect(ok), "{ok}");
        }
        for bad in [
            "https://app.example.com.evil.test/",
            "https://app.example.com@evil.test/",
            "http://app.example.com/",
            "https://billing.example.com/",
            "//evil.test",
            "javascript:alert(1)",
        ] {
            assert!(!settings.is_allowed_redirect(bad), "{bad}");
        }
    }
}
