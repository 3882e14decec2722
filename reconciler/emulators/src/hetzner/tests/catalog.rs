//! The catalog endpoints answer with the seeded locations, types and images.

use super::Api;
use http::StatusCode;

#[tokio::test]
async fn server_types_are_priced_in_every_location_they_are_sold_in() {
    let api = Api::start().await;
    let r = api.get("/server_types?name=cpx21").await;
    let t = &r.body["server_types"][0];
    assert_eq!(
        (t["cores"].as_u64(), t["disk"].as_u64()),
        (Some(3), Some(80))
    );
    assert_eq!(t["prices"].as_array().map(Vec::len), Some(6));
    assert_eq!(t["prices"][0]["price_monthly"]["net"], "7.5500000000");
    assert_eq!(
        t["locations"][0],
        serde_json::json!({"id": 1, "name": "fsn1", "deprecation": null,
                           "available": true, "recommended": true})
    );
    let r = api.get(&format!("/server_types/{}", t["id"])).await;
    assert_eq!(r.body["server_type"]["name"], "cpx21");
    assert_eq!(
        api.get("/server_types/1").await.status,
        StatusCode::NOT_FOUND
    );
    api.emu.shutdown().await;
}

#[tokio::test]
async fn locations_and_datacenters_cover_the_six_regions() {
    let api = Api::start().await;
    let r = api.get("/locations?sort=name").await;
    let names: Vec<&str> = r.body["locations"]
        .as_array()
        .expect("locations")
        .iter()
        .filter_map(|l| l["name"].as_str())
        .collect();
    assert_eq!(names, ["ash", "fsn1", "hel1", "hil", "nbg1", "sin"]);
    let r = api.get("/locations/6").await;
    assert_eq!(r.body["location"]["network_zone"], "ap-southeast");
    let r = api.get("/datacenters").await;
    assert_eq!(r.body["datacenters"].as_array().map(Vec::len), Some(6));
    assert!(r.body["recommendation"].as_u64().is_some());
    let r = api.get("/datacenters?name=fsn1-dc14").await;
    assert_eq!(r.body["datacenters"][0]["location"]["name"], "fsn1");
    api.emu.shutdown().await;
}

#[tokio::test]
async fn images_filter_by_name_type_and_architecture() {
    let api = Api::start().await;
    let r = api.get("/images?name=ubuntu-24.04&architecture=arm").await;
    let images = r.body["images"].as_array().expect("images");
    assert_eq!(images.len(), 1);
    assert_eq!(images[0]["architecture"], "arm");
    let r = api.get("/images?type=snapshot").await;
    assert_eq!(r.body["images"].as_array().map(Vec::len), Some(0));
    let r = api.get("/images?type=system&name=debian-13").await;
    assert_eq!(r.body["images"].as_array().map(Vec::len), Some(2));
    let r = api.get(&format!("/images/{}", images[0]["id"])).await;
    assert_eq!(r.body["image"]["os_flavor"], "ubuntu");
    assert_eq!(api.get("/images?type=weird").await.code(), "invalid_input");
    api.emu.shutdown().await;
}
