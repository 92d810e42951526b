"""Vietnamese wording of reasons written into events (supplements, refusals, apologies)."""

SUPPLEMENT_REASONS = (
    "Bản sao chưa được chứng thực",
    "Tờ khai thiếu chữ ký của người đề nghị",
    "Thông tin trên tờ khai không khớp với giấy tờ tùy thân",
    "Bản vẽ, sơ đồ không rõ ràng",
    "Thiếu chữ ký xác nhận của các bên liên quan",
)
REFUSAL_REASONS = (
    "Không đủ điều kiện theo quy định",
    "Hồ sơ không thuộc thẩm quyền giải quyết",
    "Thông tin kê khai không trung thực",
    "Đối tượng không thuộc diện được hưởng chính sách",
)
APOLOGY_REASONS = (
    "Cần thêm thời gian thẩm định, xác minh thực địa",
    "Chờ ý kiến của cơ quan phối hợp",
    "Khối lượng hồ sơ tăng đột biến",
)
PUSH_TO_PAPER = "Đề nghị nộp bản giấy trực tiếp tại Bộ phận Một cửa"
