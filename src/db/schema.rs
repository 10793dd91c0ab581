// Portable types only (see DESIGN.md): the same schema serves SQLite and PostgreSQL.

diesel::table! {
    accounts (id) {
        id -> BigInt,
        name -> Text,
        created_at -> Timestamp,
        leak_response -> Text,
        scim_token_hash -> Nullable<Text>,
        max_lifetime_days -> Nullable<Integer>,
        expiry_required -> Bool,
        mfa_required -> Bool,
        max_idle_days -> Nullable<Integer>,
        routes_required -> Bool,
        max_rate_limit -> Nullable<Text>,
    }
}

diesel::table! {
    users (id) {
        id -> BigInt,
        account_id -> BigInt,
        email -> Text,
        name -> Text,
        password_hash -> Nullable<Text>,
        role -> Integer,
        auth_type -> Text,
        created_at -> Timestamp,
        last_login_at -> Nullable<Timestamp>,
        removed_at -> Nullable<Timestamp>,
        token_expiry_email -> Bool,
        phone -> Nullable<Text>,
        lang -> Text,
        jwt_generation -> Integer,
        user_name -> Nullable<Text>,
        external_id -> Nullable<Text>,
        deactivated -> Bool,
    }
}

diesel::table! {
    password_setups (token_hash) {
        token_hash -> Text,
        user_id -> BigInt,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    account_events (id) {
        id -> BigInt,
        account_id -> BigInt,
        actor_id -> Nullable<BigInt>,
        at -> Timestamp,
        kind -> Text,
        summary -> Text,
        token_id -> Nullable<BigInt>,
        client_address -> Nullable<Text>,
    }
}

diesel::joinable!(password_setups -> users (user_id));

diesel::table! {
    sessions (id_hash) {
        id_hash -> Text,
        user_id -> BigInt,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    tokens (id) {
        id -> BigInt,
        account_id -> BigInt,
        issuer_id -> BigInt,
        name -> Text,
        description -> Nullable<Text>,
        role -> Integer,
        secret_hash -> Text,
        created_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        last_used_at -> Nullable<Timestamp>,
        deleted_at -> Nullable<Timestamp>,
        deleted_by -> Nullable<BigInt>,
        form_id -> Nullable<Text>,
        parent_id -> Nullable<BigInt>,
        old_secret_hash -> Nullable<Text>,
        old_secret_until -> Nullable<Timestamp>,
        allowed_ips -> Nullable<Text>,
        last_used_ip -> Nullable<Text>,
        last_used_user_agent -> Nullable<Text>,
        allowed_routes -> Nullable<Text>,
        rate_limit -> Nullable<Text>,
        usage_limit -> Nullable<Text>,
    }
}

diesel::joinable!(users -> accounts (account_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(tokens -> accounts (account_id));
diesel::joinable!(tokens -> users (issuer_id));

diesel::table! {
    notices (id) {
        id -> BigInt,
        token_id -> BigInt,
        kind -> Text,
        user_id -> BigInt,
        created_at -> Timestamp,
        read_at -> Nullable<Timestamp>,
        email_status -> Text,
        attempts -> Integer,
        last_error -> Nullable<Text>,
        next_attempt_at -> Timestamp,
        claim_id -> Nullable<Text>,
        claimed_until -> Nullable<Timestamp>,
        sent_at -> Nullable<Timestamp>,
        digest_key -> Nullable<Text>,
        detail -> Nullable<Text>,
    }
}

diesel::table! {
    sweep_lease (id) {
        id -> Integer,
        holder -> Nullable<Text>,
        until -> Nullable<Timestamp>,
    }
}

diesel::joinable!(notices -> tokens (token_id));
diesel::joinable!(notices -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    accounts,
    users,
    sessions,
    tokens,
    used_refresh_tokens,
    notices,
    password_setups,
    account_events,
    login_failures,
    user_totp,
    recovery_codes,
    passkeys
);

diesel::table! {
    user_totp (user_id) {
        user_id -> BigInt,
        secret_sealed -> Text,
        created_at -> Timestamp,
        confirmed_at -> Nullable<Timestamp>,
        last_step -> BigInt,
    }
}

diesel::table! {
    recovery_codes (user_id, code_hash) {
        user_id -> BigInt,
        code_hash -> Text,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(user_totp -> users (user_id));
diesel::joinable!(recovery_codes -> users (user_id));

diesel::table! {
    used_refresh_tokens (jti) {
        jti -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    login_failures (key) {
        key -> Text,
        count -> Integer,
        window_start -> Timestamp,
    }
}

diesel::table! {
    token_addresses (token_id, address) {
        token_id -> BigInt,
        address -> Text,
        last_at -> Timestamp,
    }
}

diesel::table! {
    token_usage (token_id, day) {
        token_id -> BigInt,
        day -> Date,
        requests -> BigInt,
        refused_route -> BigInt,
        refused_rate -> BigInt,
        refused_quota -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(tokens, token_addresses, token_usage);

diesel::table! {
    passkeys (id) {
        id -> BigInt,
        user_id -> BigInt,
        credential_id -> Text,
        name -> Text,
        passkey -> Text,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(passkeys -> users (user_id));

diesel::table! {
    webauthn_used_challenges (challenge_hash) {
        challenge_hash -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    sso_configs (account_id) {
        account_id -> BigInt,
        protocol -> Text,
        issuer -> Text,
        client_id -> Text,
        client_secret_sealed -> Text,
        required -> Bool,
        jit_role -> Nullable<Integer>,
        updated_at -> Timestamp,
        idp_metadata -> Nullable<Text>,
        idp_initiated -> Bool,
    }
}

diesel::table! {
    saml_used_assertions (assertion_hash) {
        assertion_hash -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    webhook_endpoints (id) {
        id -> BigInt,
        account_id -> BigInt,
        url -> Text,
        description -> Text,
        events -> Text,
        enabled -> Bool,
        disabled_reason -> Nullable<Text>,
        secret_sealed -> Text,
        previous_secret_sealed -> Nullable<Text>,
        previous_secret_until -> Nullable<Timestamp>,
        failing_since -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        due_at -> Nullable<Timestamp>,
        queued_seq -> BigInt,
    }
}

diesel::table! {
    webhook_messages (id) {
        id -> BigInt,
        endpoint_id -> BigInt,
        account_id -> BigInt,
        msg_id -> Text,
        event_type -> Text,
        payload -> Text,
        dedupe_key -> Nullable<Text>,
        state -> Text,
        attempts -> Integer,
        created_at -> Timestamp,
        next_attempt_at -> Timestamp,
        claim_id -> Nullable<Text>,
        claimed_until -> Nullable<Timestamp>,
        last_attempt_at -> Nullable<Timestamp>,
        last_status -> Nullable<Integer>,
        last_latency_ms -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        finished_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(webhook_messages -> webhook_endpoints (endpoint_id));
diesel::allow_tables_to_appear_in_same_query!(webhook_endpoints, webhook_messages, tokens);

diesel::table! {
    service_accounts (user_id) {
        user_id -> BigInt,
        account_id -> BigInt,
        description -> Text,
        created_by -> Nullable<BigInt>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    trust_policies (id) {
        id -> BigInt,
        account_id -> BigInt,
        issuer -> Text,
        audience -> Text,
        conditions -> Text,
        service_account_id -> BigInt,
        role -> Integer,
        lifetime_seconds -> Integer,
        created_by -> Nullable<BigInt>,
        created_at -> Timestamp,
        allowed_routes -> Nullable<Text>,
    }
}

diesel::table! {
    token_exchanges (issuer, jti) {
        issuer -> Text,
        jti -> Text,
        account_id -> BigInt,
        token_id -> BigInt,
        policy_id -> Nullable<BigInt>,
        expires_at -> Timestamp,
        keep_until -> Timestamp,
        ended -> Bool,
    }
}

diesel::joinable!(service_accounts -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(service_accounts, users);
diesel::allow_tables_to_appear_in_same_query!(service_accounts, tokens);
diesel::allow_tables_to_appear_in_same_query!(trust_policies, users);
diesel::allow_tables_to_appear_in_same_query!(token_exchanges, tokens);

diesel::table! {
    quota_counters (token_id) {
        token_id -> BigInt,
        period -> Text,
        used -> BigInt,
        noticed_period -> Nullable<Text>,
    }
}

diesel::table! {
    rate_buckets (token_id) {
        token_id -> BigInt,
        level -> Double,
        updated_ms -> BigInt,
    }
}
